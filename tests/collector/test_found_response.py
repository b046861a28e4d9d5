"""`found_response`: how every API endpoint that reads one stored thing answers (a call, a
dataset, an experiment, a trace, a session)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from assay.collector.api.encoding import found_response
from assay.collector.store.base import StoreError


def answer(read: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    response = asyncio.run(found_response("no such thing", read, *args, **kwargs))
    return response.status_code, json.loads(bytes(response.body))


def store_down(_: str) -> None:
    raise StoreError("connection refused")


def test_what_is_found_is_answered_shaped() -> None:
    assert answer(lambda key: {"key": key}, "k1") == (200, {"key": "k1"})
    assert answer(lambda key: [key], "k1", shape=lambda found: {"items": found}) == (
        200,
        {"items": ["k1"]},
    )


def test_nothing_found_is_a_404_saying_what_was_missing() -> None:
    assert answer(lambda key: None, "k1") == (404, {"error": "no such thing"})


def test_a_store_that_fails_is_a_503_saying_why() -> None:
    assert answer(store_down, "k1") == (503, {"error": "query failed: connection refused"})
