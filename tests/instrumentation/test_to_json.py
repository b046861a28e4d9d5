"""`to_json`, the encoder of message attributes: compact JSON, the same as `json.dumps` gives."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessage

from assay.instrumentation._spans import to_json

VALUES: list[Any] = [
    [{"role": "user", "parts": [{"type": "text", "content": 'héllo "quoted"\n\t😀'}]}],
    {"int": 10**30, "float": 2.5, "nan": float("nan"), "none": None, "bool": True},
    [1, (2, 3), [], {}],
    "a bare string",
    7,
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_matches_json_dumps_with_compact_separators(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert to_json(value) == expected


def test_pydantic_models_are_dumped_without_nones_and_other_objects_as_text() -> None:
    message = ChatCompletionMessage(role="assistant", content="hi")
    assert json.loads(to_json([message, object])) == [
        {"role": "assistant", "content": "hi"},
        str(object),
    ]


def test_a_cycle_fails_with_an_exception_and_later_calls_still_work() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises((RecursionError, ValueError)):
        to_json(cycle)
    assert to_json([1]) == "[1]"


def test_threads_encoding_the_same_object_at_once_get_the_same_text() -> None:
    value = [{"role": "user", "parts": [{"type": "text", "content": "x" * 50}]}] * 20
    expected = to_json(value)
    results: list[str] = []

    def encode() -> None:
        results.extend(to_json(value) for _ in range(200))

    threads = [threading.Thread(target=encode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 800
