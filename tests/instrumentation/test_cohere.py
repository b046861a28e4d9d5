"""cohere instrumentation: the real v2 client against a local fake of Cohere's chat API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import cohere
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.instrumentation import pricing, semconv
from tests.fakes._server import FUNCTION_ARGUMENT
from tests.fakes.fake_cohere import (
    FAIL_429,
    FAIL_MIDSTREAM,
    TEMPLATE_TOKENS,
    TOOL_PLAN,
    FakeCohere,
)
from tests.instrumentation.chat_requests import (
    QUESTION,
    WEATHER_TOOL,
    json_attribute,
    text_messages,
)

MODEL = "command-r-plus-08-2024"


@pytest.fixture
def fake() -> Iterator[FakeCohere]:
    with FakeCohere() as server:
        yield server


@pytest.fixture
def client(fake: FakeCohere) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="test-key", base_url=fake.base_url, max_retries=0)


def expected_cost(usage: Any) -> float | None:
    billed = usage.billed_units
    return pricing.cost_usd(
        MODEL,
        int(billed.input_tokens),
        int(billed.output_tokens),
        provider=semconv.PROVIDER_COHERE,
    )


def test_chat_is_one_client_span_with_billed_tokens_cost_and_messages(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: cohere.ClientV2
) -> None:
    response = client.chat(model=MODEL, messages=QUESTION, temperature=0.3, max_tokens=100, k=40)

    span = only_span()
    attributes = span.attributes
    billed = response.usage.billed_units
    assert span.name == f"chat {MODEL}"
    assert span.kind == SpanKind.CLIENT
    assert attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_COHERE
    assert attributes[semconv.RESPONSE_ID] == response.id
    assert attributes[semconv.REQUEST_TEMPERATURE] == 0.3
    assert attributes[semconv.REQUEST_MAX_TOKENS] == 100
    assert attributes[semconv.REQUEST_TOP_K] == 40
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    # The billed units, not `tokens` (which add the prompt template's overhead).
    assert attributes[semconv.USAGE_INPUT_TOKENS] == billed.input_tokens
    assert response.usage.tokens.input_tokens == billed.input_tokens + TEMPLATE_TOKENS
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == billed.output_tokens
    cost = expected_cost(response.usage)
    assert cost is not None and cost > 0
    assert attributes[semconv.COST_USD] == pytest.approx(cost)
    assert attributes[semconv.RESPONSE_FINISH_REASONS] == ("complete",)
    assert json_attribute(span, semconv.INPUT_MESSAGES) == text_messages(QUESTION)
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.message.content[0].text}],
            "finish_reason": "complete",
        }
    ]


def test_chat_stream_passes_events_through_and_records_usage_from_message_end(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: cohere.ClientV2
) -> None:
    events = list(client.chat_stream(model=MODEL, messages=QUESTION))

    assert events[0].type == "message-start"
    end = events[-1]
    assert end.type == "message-end"
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    span = only_span()
    attributes = span.attributes
    assert attributes[semconv.REQUEST_STREAM] is True
    assert attributes[semconv.RESPONSE_ID] == events[0].id
    assert attributes[semconv.USAGE_INPUT_TOKENS] == end.delta.usage.billed_units.input_tokens
    assert attributes[semconv.COST_USD] == pytest.approx(expected_cost(end.delta.usage))
    assert attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": text}],
            "finish_reason": "complete",
        }
    ]


def test_async_chat_and_stream(spans: InMemorySpanExporter, fake: FakeCohere) -> None:
    client = cohere.AsyncClientV2(api_key="test-key", base_url=fake.base_url)

    async def calls() -> tuple[Any, list[Any]]:
        response = await client.chat(model=MODEL, messages=QUESTION)
        events = [event async for event in client.chat_stream(model=MODEL, messages=QUESTION)]
        return response, events

    response, events = asyncio.run(calls())

    plain, streamed = spans.get_finished_spans()
    assert plain.attributes[semconv.REQUEST_STREAM] is False
    assert plain.attributes[semconv.USAGE_OUTPUT_TOKENS] == (
        response.usage.billed_units.output_tokens
    )
    assert streamed.attributes[semconv.REQUEST_STREAM] is True
    assert streamed.attributes[semconv.USAGE_OUTPUT_TOKENS] == (
        events[-1].delta.usage.billed_units.output_tokens
    )


@pytest.mark.parametrize("stream", [False, True])
def test_tool_plan_tool_calls_and_definitions_are_captured(
    spans: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    client: cohere.ClientV2,
    stream: bool,
) -> None:
    question = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        list(client.chat_stream(model=MODEL, messages=question, tools=[WEATHER_TOOL]))
    else:
        client.chat(model=MODEL, messages=question, tools=[WEATHER_TOOL])

    span = only_span()
    assert json_attribute(span, semconv.TOOL_DEFINITIONS) == [
        {"type": "function", **WEATHER_TOOL["function"]}
    ]
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_call",)
    (output,) = json_attribute(span, semconv.OUTPUT_MESSAGES)
    plan, call = output["parts"]
    assert plan == {"type": "reasoning", "content": TOOL_PLAN}
    assert call["type"] == "tool_call" and call["name"] == "get_weather"
    assert call["id"] == "get_weather_1byjy32y4hvq"
    # Streamed arguments arrive in fragments: joined back into one JSON text.
    assert json.loads(call["arguments"]) == {"city": FUNCTION_ARGUMENT}


def test_tool_results_in_the_conversation_are_captured(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: cohere.ClientV2
) -> None:
    call = {
        "id": "get_weather_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "get_weather_1",
            "content": [{"type": "document", "document": {"data": '{"weather": "sunny"}'}}],
        },
    ]
    client.chat(model=MODEL, messages=conversation, tools=[WEATHER_TOOL])

    sent = json_attribute(only_span(), semconv.INPUT_MESSAGES)
    assert sent[1]["parts"] == [
        {"type": "reasoning", "content": "I will look it up."},
        {
            "type": "tool_call",
            "id": "get_weather_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
    ]
    (response,) = sent[2]["parts"]
    assert response["type"] == "tool_call_response" and response["id"] == "get_weather_1"
    assert response["response"][0]["content"] == {"data": '{"weather": "sunny"}'}


def test_api_error_ends_the_span_as_an_error_and_reaches_the_user(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: cohere.ClientV2
) -> None:
    with pytest.raises(cohere.errors.TooManyRequestsError) as raised:
        client.chat(model=FAIL_429, messages=QUESTION)

    assert raised.value.status_code == 429
    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "TooManyRequestsError"


def test_stream_cut_mid_way_records_the_error(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: cohere.ClientV2
) -> None:
    with pytest.raises(Exception) as raised:
        for _ in client.chat_stream(model=FAIL_MIDSTREAM, messages=QUESTION):
            pass

    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert span.attributes[semconv.USAGE_REPORTED] is False


def test_v1_client_v2_namespace_is_traced_too(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], fake: FakeCohere
) -> None:
    client = cohere.Client(api_key="test-key", base_url=fake.base_url)
    client.v2.chat(model=MODEL, messages=QUESTION)

    assert only_span().attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_COHERE
