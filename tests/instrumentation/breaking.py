"""Fault injection into Assay's call lifecycle: its hooks made to fail, never the client's code.

Every provider runs through the same hooks (`describe`, `response_attributes`,
`accumulator().add` / `.attributes`), so the never-break tests break those, whatever the
provider, rather than private functions of one provider module.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.instrumentation._spans import Attributes, LLMCall
from assay.instrumentation.providers._call import CallStart, CallWrappers


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("assay bug (injected)")


class FailingAccumulator:
    """A provider's own accumulator whose `methods` (`add`, `attributes`) raise."""

    def __init__(self, real: Any, methods: tuple[str, ...]) -> None:
        self._real = real
        self._methods = methods

    def add(self, chunk: Any) -> None:
        if "add" in self._methods:
            broken()
        self._real.add(chunk)

    def attributes(self, call: LLMCall) -> Attributes:
        if "attributes" in self._methods:
            broken()
        return dict(self._real.attributes(call))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def break_accumulator(
    monkeypatch: pytest.MonkeyPatch, wrappers: type[CallWrappers], *methods: str
) -> None:
    """Make the stream accumulators of `wrappers` fail in `methods`."""
    real = wrappers.accumulator

    def accumulator(self: CallWrappers, call: LLMCall, start: CallStart) -> Any:
        return FailingAccumulator(real(self, call, start), methods)

    monkeypatch.setattr(wrappers, "accumulator", accumulator)


def break_hook(monkeypatch: pytest.MonkeyPatch, wrappers: type[CallWrappers], point: str) -> None:
    """Make one lifecycle point fail: `describe`, `response` (plain and streamed), `chunk`."""
    if point == "describe":
        monkeypatch.setattr(wrappers, "describe", broken)
    elif point == "response":
        monkeypatch.setattr(wrappers, "response_attributes", broken)
        break_accumulator(monkeypatch, wrappers, "attributes")
    elif point == "chunk":
        break_accumulator(monkeypatch, wrappers, "add")
    else:
        raise ValueError(point)
