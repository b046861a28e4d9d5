# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FILES  := $(VENV)/.package-files
EXTRAS := .[collector,grafana,dev]
# `make run` needs only the collector's extra: no test, lint or Grafana tooling to download
# (`make test` adds them later).
RUN_STAMP  := $(VENV)/.installed-run
RUN_EXTRAS := .[collector]
# `make notebook`: the collector's extra and a Jupyter kernel with its runner.
NOTEBOOK_STAMP  := $(VENV)/.installed-notebook
NOTEBOOK_EXTRAS := .[collector,notebook]
# The installer: uv (pip-compatible; resolves, downloads and unpacks in parallel, several times
# faster than pip: figures in the README's "What `make run` does"), bootstrapped into the venv with
# pip. `make INSTALLER=pip` installs with pip alone, as does a machine where uv cannot be installed
# or fails to install (uv reads no pip configuration: a private index set for pip only, say).
INSTALLER ?= uv
UV_VERSION := uv>=0.13,<0.14

.PHONY: install run demo notebook test test-fast lint bench bench-quick clean FORCE

install: $(STAMP)

# A strict editable install links every file of the package into an `assay/` tree
# (build/__editable__.*), so static tools (mypy, pyright, import-linter) see `assay.*` as any
# installed package. It links files, not folders: a file added or removed makes it link again
# (without the dependencies, unless pyproject.toml changed too; uv is told to rebuild assay, as it
# would reuse a cached build of it otherwise).
# $(call editable_install,EXTRAS): the recipe of a stamp, with the extras it installs.
# uv is asked to compile bytecode as pip does: it costs about as much at install as it saves on the
# first start (the demo's processes each compile what they import otherwise), and where bytecode
# cannot be written (PYTHONDONTWRITEBYTECODE, a read-only venv) every start would pay it again.
define editable_install
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@$(call install_with,$(if $(filter pyproject.toml,$?),-e '$(1)',--no-deps -e .))
	@touch $@
endef

# $(call install_with,ARGS): uv if it is there or can be had, else (or if it fails) pip. The venv
# is made without pip (ensurepip unpacks and compiles it: 5-20 s here); uv comes from the pip of
# $(PYTHON) where that has `--python` (pip >= 22.3), else from the venv's own pip; uv then installs
# pip into the venv too, for `make INSTALLER=pip` and the tests that build packages with it.
define install_with
	if test "$(INSTALLER)" = uv && ! test -x $(BIN)/uv; then \
		$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check \
			'$(UV_VERSION)' 2>/dev/null \
		|| { $(ensure_pip) && $(BIN)/python -m pip install --quiet --disable-pip-version-check \
			'$(UV_VERSION)'; } \
		|| echo 'uv could not be installed: installing with pip (slower)'; \
	fi; \
	if test "$(INSTALLER)" = uv && test -x $(BIN)/uv; then \
		echo "uv pip install $(1)"; \
		$(BIN)/uv pip install --quiet --python $(BIN)/python --config-setting editable_mode=strict \
			--compile-bytecode --reinstall-package assay pip $(1) && exit 0; \
		echo 'uv failed: installing with pip'; \
	fi; \
	$(ensure_pip); \
	echo "pip install $(1)"; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--config-settings editable_mode=strict $(1)
endef
ensure_pip = { $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip >/dev/null; }

$(STAMP): pyproject.toml $(FILES)
	$(call editable_install,$(EXTRAS))

$(RUN_STAMP): pyproject.toml $(FILES)
	$(call editable_install,$(RUN_EXTRAS))

$(NOTEBOOK_STAMP): pyproject.toml $(FILES)
	$(call editable_install,$(NOTEBOOK_EXTRAS))

# The list of the package's files, rewritten only when a file comes or goes.
$(FILES): FORCE
	@mkdir -p $(VENV)
	@find instrumentation evaluators collector -type f -not -path '*/__pycache__/*' | sort > $@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@

FORCE:

# Start the collector on embedded storage in ./assay-data (online evaluation rules from
# examples/assay.yaml); demo traffic goes through it when the store holds no call yet.
run: $(RUN_STAMP)
	$(BIN)/assay collector --storage ./assay-data --config examples/assay.yaml --demo

# More demo traffic, to the collector `make run` started (from another terminal).
demo: $(RUN_STAMP)
	$(BIN)/assay demo

# Run the quickstart notebook top to bottom in a Jupyter kernel against the running collector
# (ASSAY_URL, default http://localhost:4318); the executed copy, outputs included, is written to
# examples/quickstart-run.ipynb.
notebook: $(NOTEBOOK_STAMP)
	$(BIN)/jupyter-execute --kernel_name=python3 --output=quickstart-run examples/quickstart.ipynb

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy -p assay.instrumentation -p assay.evaluators -p assay.collector
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml

test: lint
	$(BIN)/pytest

# The pure tier, for the edit-test loop: no collector start-up, browser, peer venv, Docker or
# notebook, no child process (tests/tiers.py), on two worker processes (pytest-xdist: each
# has its own instrumentation, fake servers and temporary folders). `--dist loadfile` keeps a
# file's tests in one worker, so a client library a file imports lazily (tests/lazy.py) is
# imported by one worker, not both. `make test` still runs everything, in one process.
test-fast: install
	$(BIN)/pytest --fast -n 2 --dist loadfile

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/durability.py
	$(BIN)/python bench/ui_paging.py
	$(BIN)/python bench/evaluators.py
	$(BIN)/python bench/experiments.py
	$(BIN)/python bench/dashboards.py
	$(BIN)/python bench/overhead.py

# The ingest regression guard (~1 minute): end-to-end spans/s and the per-stage cost table. An
# issue that touches the ingest path reports it before and after.
bench-quick: install
	$(BIN)/python bench/ingest.py --spans 10000 --stage-spans 4000

clean:
	rm -rf $(VENV) build assay-data .pytest_cache .mypy_cache .ruff_cache
