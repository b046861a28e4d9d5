"""`instrument()` covers every installed client library from one list, and skips missing ones;
the list, the entry points and the installed clients agree."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points, packages_distributions, version

import pytest
from opentelemetry.sdk.trace import TracerProvider
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from assay.instrumentation.providers import package


def instrumentor(target: str) -> object:
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def test_every_installed_client_is_instrumented(
    instrument_with: Callable[..., TracerProvider],
) -> None:
    instrument_with()
    for _, target in package.INSTRUMENTORS:
        assert instrumentor(target).is_instrumented_by_opentelemetry, target  # type: ignore[attr-defined]


def test_a_missing_client_library_is_skipped_silently(
    instrument_with: Callable[..., TracerProvider],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = ("no_such_llm_client", "no_such_llm_client.instrumentation:Instrumentor")
    monkeypatch.setattr(package, "INSTRUMENTORS", (missing, *package.INSTRUMENTORS))
    with caplog.at_level(logging.INFO, logger="assay.instrumentation"):
        instrument_with()
    # Methods other tests of this process took before instrumenting are named, rightly: not
    # this test's concern.
    said = [r for r in caplog.records if "taken before instrument()" not in r.getMessage()]
    assert said == []
    for _, target in package.INSTRUMENTORS[1:]:
        assert instrumentor(target).is_instrumented_by_opentelemetry  # type: ignore[attr-defined]


def test_each_instrumentor_is_an_opentelemetry_entry_point() -> None:
    registered = {ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    for _, target in package.INSTRUMENTORS:
        assert target in registered, f"{target} is missing from pyproject's entry points"


def test_each_instrumentor_supports_the_installed_client_it_is_walked_for() -> None:
    """The import name `instrument()` looks for belongs to the distribution the instrumentor
    requires, and the installed version is one it accepts: the tests here test supported clients."""
    providers = packages_distributions()
    for library, target in package.INSTRUMENTORS:
        for requirement in map(Requirement, instrumentor(target).instrumentation_dependencies()):  # type: ignore[attr-defined]
            distribution = canonicalize_name(requirement.name)
            importers = {canonicalize_name(d) for d in providers[library.split(".")[0]]}
            assert distribution in importers, f"{target} requires {requirement}, not {library}"
            installed = version(requirement.name)
            assert requirement.specifier.contains(installed, prereleases=True), (
                f"{requirement.name} {installed} is installed, {target} supports {requirement}"
            )
