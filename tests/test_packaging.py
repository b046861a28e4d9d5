"""Packaging: one distribution whose light part imports none of the collector's dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COLLECTOR_ONLY = [
    "chdb",
    "clickhouse_connect",
    "starlette",
    "uvicorn",
    "pydantic_settings",
    "click",
]


def test_the_light_install_names_only_instrumentation_dependencies() -> None:
    names = [d.split(">")[0].split("[")[0] for d in PYPROJECT["project"]["dependencies"]]
    assert all(n.startswith("opentelemetry-") or n == "wrapt" for n in names), names
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"collector", "dev"} <= set(extras)


@pytest.mark.subprocess
def test_instrumenting_a_service_imports_nothing_of_the_collector() -> None:
    code = (
        "import sys, assay.instrumentation.auto, assay.instrumentation.pricing\n"
        f"loaded = [m for m in {COLLECTOR_ONLY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert not any(m.startswith('assay.collector') for m in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"OTEL_TRACES_EXPORTER": "none", "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_package_folder_is_packaged() -> None:
    """A subpackage missing from pyproject's list would be left out of the wheel."""
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed


@pytest.mark.subprocess
def test_importing_any_collector_or_evaluator_module_instruments_nothing() -> None:
    """Only a service instruments itself: importing Assay's own modules (the CLI, `assay demo`,
    the collector) leaves the process's global tracer provider alone."""
    code = (
        "import importlib, pkgutil\n"
        "import assay.collector, assay.evaluators\n"
        "from opentelemetry import trace\n"
        "scripts = {'assay.collector.__main__', 'assay.collector.demo.service',"
        " 'assay.collector.demo.agent'}\n"
        "for package in (assay.collector, assay.evaluators):\n"
        "    for found in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if found.name not in scripts:\n"
        "            importlib.import_module(found.name)\n"
        "provider = type(trace.get_tracer_provider()).__name__\n"
        "assert provider == 'ProxyTracerProvider', provider\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_package_says_it_is_typed() -> None:
    """PEP 561: without py.typed (in the folder and in the wheel) users' type checkers treat
    the package as untyped, `from assay.evaluators import Score` included."""
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        assert (ROOT / folder / "py.typed").is_file(), folder
        assert "py.typed" in data.get(package, []), package


@pytest.mark.subprocess
def test_the_root_conftest_imports_nothing_heavy() -> None:
    """Pure tests (the normalizer's, the instrumentation's) load the root conftest too: it must
    not bring in the embedded store or the collector's settings."""
    heavy = ["chdb", "clickhouse_connect", "pydantic_settings", "yaml", "assay.collector"]
    code = (
        "import sys, tests.conftest\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.subprocess
def test_the_light_package_installs_from_the_checkout(tmp_path: Path) -> None:
    """`pip install /path/to/assay` as the README says: the checkout builds into a package that
    needs only the light dependencies, and its commands run from a venv nobody activated."""
    source = tmp_path / "assay"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    for folder in PYPROJECT["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The light dependencies are this venv's; the build backend (setuptools, wheel) comes from
    # the package index, as for `make install` and any `pip install` of a source tree.
    site = Path(sysconfig.get_paths()["purelib"])
    venv_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (venv_site / "dependencies.pth").write_text(f"{site}\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    metadata = next(venv_site.glob("assay-*.dist-info")) / "METADATA"
    required = [
        line.split(":", 1)[1].strip()
        for line in metadata.read_text().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert required and all(r.startswith(("opentelemetry-", "wrapt")) for r in required), required
    code = "import assay.instrumentation.auto, assay.instrumentation as a; print(a.__file__)"
    done = subprocess.run(
        [venv / "bin" / "assay-instrument", "python", "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "none"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(venv_site)), done.stdout


def _make_install(project: Path, *args: str, uv_fails: bool = False, **env: str) -> list[str]:
    """Run the Makefile's `make run` install (its stamp) in `project`, where $(PYTHON) and the
    .venv's python and uv are stand-ins that log their arguments; the commands they were given."""
    log = project / "calls.log"
    log.write_text("")
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"PYTHON={project / 'host'}",
            *args,
            ".venv/.installed-run",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "CALLS": str(log), "UV_FAILS": "1" * uv_fails, **env},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return log.read_text().replace(str(project), "").splitlines()


@pytest.mark.subprocess
def test_make_installs_with_uv_and_falls_back_to_pip(tmp_path: Path) -> None:
    """The install recipe's choices (uv or pip, all the dependencies or relinking the files) with
    stand-in installers: uv comes from the host's pip, else the venv's; uv gets the strict editable
    mode, rebuilds assay each time and installs pip too; pip installs what uv failed to; a file
    added relinks without the dependencies."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    for folder in ("instrumentation", "evaluators", "collector"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = 'echo "$(basename "$0") $*" >> "$CALLS"'
    uv = tmp_path / "uv-to-install"
    uv.write_text(f'#!/bin/sh\n{log}\ntest -z "$UV_FAILS"\n')
    stand_ins = {
        bin_dir / "python": f"#!/bin/sh\n{log}\n",  # its pip succeeds, installing nothing
        # the host's pip installs uv unless told it cannot
        tmp_path / "host": f'#!/bin/sh\n{log}\ntest -z "$HOST_FAILS" && cp {uv} {bin_dir}/uv\n',
    }
    for path, text in stand_ins.items():
        path.write_text(text)
        path.chmod(0o755)
    uv.chmod(0o755)
    uv_args = (
        "uv pip install --quiet --python .venv/bin/python --config-setting editable_mode=strict "
        "--compile-bytecode --reinstall-package assay pip"
    )
    pip = "python -m pip install --quiet --disable-pip-version-check"
    pip_args = f"{pip} --config-settings editable_mode=strict"
    get_uv = (
        "host -m pip --python .venv/bin/python install --quiet --disable-pip-version-check "
        "uv>=0.13,<0.14"
    )
    has_pip = "python -m pip --version"

    assert _make_install(tmp_path) == [get_uv, f"{uv_args} -e .[collector]"]
    assert _make_install(tmp_path) == []  # nothing changed: no install

    (tmp_path / "collector" / "new.py").write_text("")
    assert _make_install(tmp_path) == [f"{uv_args} --no-deps -e ."]

    (tmp_path / "pyproject.toml").write_text("# changed\n")
    assert _make_install(tmp_path, uv_fails=True) == [
        f"{uv_args} -e .[collector]",
        has_pip,
        f"{pip_args} -e .[collector]",
    ]

    (tmp_path / "pyproject.toml").write_text("# changed again\n")
    assert _make_install(tmp_path, "INSTALLER=pip") == [has_pip, f"{pip_args} -e .[collector]"]

    # No uv, and the host's pip cannot install it: the venv's pip is asked; without uv after
    # that, pip installs the package.
    (bin_dir / "uv").unlink()
    (tmp_path / "pyproject.toml").write_text("# and again\n")
    assert _make_install(tmp_path, HOST_FAILS="1") == [
        get_uv,
        has_pip,
        f"{pip} uv>=0.13,<0.14",
        has_pip,
        f"{pip_args} -e .[collector]",
    ]
