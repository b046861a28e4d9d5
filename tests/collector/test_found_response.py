"""`found_response`: how every API endpoint that reads one stored thing answers (a call, a
dataset, an experiment, a trace, a session)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from assay.collector.api.encoding import found_response
from assay.collector.records.read_gate import ReadGate
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import StoreError
from assay.collector.store.reading import ReadLimitExceeded

STORE = "the store"


def answer(read: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    # The read gets the app's store first, as every record reader does.
    gate = ReadGate.from_settings(CollectorSettings())
    app = SimpleNamespace(state=SimpleNamespace(store=STORE, read_gate=gate))
    request = Request({"type": "http", "app": app})
    try:
        response = asyncio.run(found_response(request, "no such thing", read, *args, **kwargs))
    finally:
        gate.close()
    return response.status_code, json.loads(bytes(response.body))


def store_down(_: str, __: str) -> None:
    raise StoreError("connection refused")


def too_slow(_: str, __: str) -> None:
    raise StoreError("Code: 159. DB::Exception: Timeout exceeded: elapsed 10.0 s")


def test_what_is_found_is_answered_shaped() -> None:
    assert answer(lambda store, key: {"key": key, "store": store}, "k1") == (
        200,
        {"key": "k1", "store": STORE},
    )
    assert answer(lambda _, key: [key], "k1", shape=lambda found: {"items": found}) == (
        200,
        {"items": ["k1"]},
    )


def test_nothing_found_is_a_404_saying_what_was_missing() -> None:
    assert answer(lambda _, key: None, "k1") == (404, {"error": "no such thing"})


def test_a_store_that_fails_is_a_503_saying_why() -> None:
    assert answer(store_down, "k1") == (503, {"error": "query failed: connection refused"})


def test_a_read_stopped_at_its_time_limit_is_a_400_naming_the_limit() -> None:
    status, body = answer(too_slow, "k1")
    assert status == 400
    assert "read_timeout_s" in body["error"] and "narrow it" in body["error"]
    assert "Code: 159" not in body["error"]


def test_the_limit_error_is_a_store_error() -> None:
    # Everything that handled a store's failure before handles a read past its limit too.
    assert issubclass(ReadLimitExceeded, StoreError)
