"""Heavy client libraries imported by the first test that uses them, not when pytest collects.

Each pytest-xdist worker imports every test module to collect it (`make test-fast`), though it
runs only some of them: a library that takes seconds to import (litellm, openai-agents,
google-genai, pandas ...) imported at a module's top is paid by every worker. A module holds
`litellm = lazy_import("litellm")` instead and uses `litellm.completion` as before: the first
attribute read imports the real module through the ordinary import system, so the
instrumentation's patch-on-import hooks see it as they see a user's import. `--dist loadfile`
runs a file's tests in one worker, which alone pays.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

import pytest


class LazyModule:
    """Stands for the module `name`; reading an attribute imports it."""

    _name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # pytest's collection probes every module global so
            raise AttributeError(attribute)  # (`__test__`, `_fixture_function_marker` ...)
        return getattr(self._module(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        # monkeypatch would save and restore the stand-in's own __dict__, not the module's
        raise TypeError(f"patch the module: monkeypatch.setattr('{self._name}.{attribute}', ...)")

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str, skip_without: bool = False) -> Any:
    """The module `name`, imported on first use; with `skip_without`, the calling test module
    is skipped when it is not installed (as `pytest.importorskip`, without importing it)."""
    if skip_without and importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed", allow_module_level=True)
    return LazyModule(name)
