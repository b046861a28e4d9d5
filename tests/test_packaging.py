"""Packaging: one distribution whose light part imports none of the collector's dependencies."""

from __future__ import annotations

import subprocess
import sys
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
        "scripts = {'assay.collector.__main__', 'assay.collector.demo.service'}\n"
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
