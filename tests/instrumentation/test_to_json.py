"""`to_json`, the encoder of message attributes: compact JSON, the same as `json.dumps` gives."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessage
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import semconv
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


def test_lone_surrogates_are_escaped_so_the_text_is_valid_utf8() -> None:
    # JSON from a provider may escape half of a surrogate pair ("\ud83d"), and the client's
    # json.loads keeps it: a str that UTF-8, hence OTLP's protobuf, cannot encode.
    value = [{"content": "a smile \ud83d split from \ude00, and ü 😀"}]
    text = to_json(value)
    text.encode("utf-8")  # raises on a lone surrogate
    assert json.loads(text) == value


def test_a_reply_with_lone_surrogates_keeps_its_output_on_the_exported_span(
    spans: InMemorySpanExporter, fake_replying: Any
) -> None:
    with (
        fake_replying("a smile \ud83d split from \ude00") as fake,
        OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)

    (span,) = spans.get_finished_spans()
    (exported,) = encode_spans([span]).resource_spans[0].scope_spans[0].spans
    attributes = {kv.key: kv.value.string_value for kv in exported.attributes}
    (message,) = json.loads(attributes[semconv.OUTPUT_MESSAGES])
    assert message["parts"][0]["content"] == reply.choices[0].message.content


QUESTION: list[Any] = [{"role": "user", "content": "Smile?"}]


@pytest.fixture
def fake_replying() -> Any:
    return lambda text: FakeOpenAI(reply=lambda request: text)
