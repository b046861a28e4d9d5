# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[collector,grafana,dev]'
	@# mypy cannot follow the editable install's folder mapping: give it the `assay` tree.
	@mkdir -p $(VENV)/mypy/assay
	@for pkg in instrumentation evaluators collector; do ln -sfn $(CURDIR)/$$pkg $(VENV)/mypy/assay/$$pkg; done
	@touch $(STAMP)

# Start the collector on embedded storage in ./assay-data (online evaluation rules from
# examples/assay.yaml) and send demo traffic through it.
run: install
	$(BIN)/assay collector --storage ./assay-data --config examples/assay.yaml --demo

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy -p assay.instrumentation -p assay.evaluators -p assay.collector
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml

test: lint
	$(BIN)/pytest

# The pure tier, for the edit-test loop: no collector start-up, browser, peer venv, Docker or
# notebook, no child process (tests/tiers.py). `make test` still runs everything.
test-fast: install
	$(BIN)/pytest --fast

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/durability.py
	$(BIN)/python bench/ui_paging.py
	$(BIN)/python bench/evaluators.py
	$(BIN)/python bench/experiments.py
	$(BIN)/python bench/dashboards.py
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) assay-data .pytest_cache .mypy_cache .ruff_cache
