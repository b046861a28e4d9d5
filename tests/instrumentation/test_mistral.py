"""mistralai instrumentation: the real client against a local fake of Mistral's chat API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.instrumentation import pricing, semconv
from assay.instrumentation.providers import _token_estimate as estimate
from tests.fakes._server import FUNCTION_ARGUMENT
from tests.fakes.fake_mistral import FAIL_401, FAIL_MIDSTREAM, NO_USAGE, FakeMistral
from tests.instrumentation.chat_requests import (
    QUESTION,
    WEATHER_TOOL,
    json_attribute,
    text_messages,
)

MODEL = "mistral-small-latest"


@pytest.fixture
def fake() -> Iterator[FakeMistral]:
    with FakeMistral() as server:
        yield server


@pytest.fixture
def client(fake: FakeMistral) -> Mistral:
    return Mistral(api_key="test-key", server_url=fake.base_url)


def expected_cost(usage: Any) -> float | None:
    return pricing.cost_usd(
        MODEL, usage.prompt_tokens, usage.completion_tokens, provider=semconv.PROVIDER_MISTRAL_AI
    )


def test_complete_is_one_client_span_with_usage_cost_and_messages(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    response = client.chat.complete(
        model=MODEL, messages=QUESTION, temperature=0.3, max_tokens=100, random_seed=7
    )

    span = only_span()
    attributes = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind == SpanKind.CLIENT
    assert attributes[semconv.OPERATION_NAME] == semconv.OP_CHAT
    assert attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_MISTRAL_AI
    assert attributes[semconv.RESPONSE_ID] == response.id
    assert attributes[semconv.RESPONSE_MODEL] == response.model
    assert attributes[semconv.REQUEST_TEMPERATURE] == 0.3
    assert attributes[semconv.REQUEST_MAX_TOKENS] == 100
    assert attributes[semconv.REQUEST_SEED] == 7
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    cost = expected_cost(response.usage)
    assert cost is not None and cost > 0
    assert attributes[semconv.COST_USD] == pytest.approx(cost)
    assert attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert json_attribute(span, semconv.INPUT_MESSAGES) == text_messages(QUESTION)
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


def test_stream_passes_events_through_and_records_the_final_usage(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    with client.chat.stream(model=MODEL, messages=QUESTION) as stream:
        events = list(stream)

    usage = events[-1].data.usage
    text = "".join(event.data.choices[0].delta.content or "" for event in events)
    span = only_span()
    attributes = span.attributes
    assert attributes[semconv.REQUEST_STREAM] is True
    assert attributes[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert attributes[semconv.COST_USD] == pytest.approx(expected_cost(usage))
    assert attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


def test_stream_without_usage_is_estimated_and_flagged(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    events = list(client.chat.stream(model=NO_USAGE, messages=QUESTION))

    attributes = only_span().attributes
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert attributes[semconv.USAGE_REPORTED] is False
    assert attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
    assert attributes[semconv.USAGE_INPUT_TOKENS] == estimate.input_tokens(QUESTION)
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == estimate.tokens_of(len(text))
    assert semconv.COST_USD not in attributes  # the model has no price


def test_async_complete_and_stream(spans: InMemorySpanExporter, client: Mistral) -> None:
    async def calls() -> tuple[Any, list[Any]]:
        response = await client.chat.complete_async(model=MODEL, messages=QUESTION)
        stream = await client.chat.stream_async(model=MODEL, messages=QUESTION)
        return response, [event async for event in stream]

    response, events = asyncio.run(calls())

    plain, streamed = spans.get_finished_spans()
    assert plain.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert plain.attributes[semconv.REQUEST_STREAM] is False
    assert streamed.attributes[semconv.REQUEST_STREAM] is True
    assert streamed.attributes[semconv.USAGE_OUTPUT_TOKENS] == (
        events[-1].data.usage.completion_tokens
    )


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_and_definitions_are_captured(
    spans: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    client: Mistral,
    stream: bool,
) -> None:
    question = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        list(client.chat.stream(model=MODEL, messages=question, tools=[WEATHER_TOOL]))
    else:
        client.chat.complete(model=MODEL, messages=question, tools=[WEATHER_TOOL])

    span = only_span()
    function = WEATHER_TOOL["function"]
    assert json_attribute(span, semconv.TOOL_DEFINITIONS) == [{"type": "function", **function}]
    assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    (output,) = json_attribute(span, semconv.OUTPUT_MESSAGES)
    (call,) = output["parts"]
    assert call["type"] == "tool_call"
    assert call["id"] and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": FUNCTION_ARGUMENT}


def test_tool_results_in_the_conversation_are_captured(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    call = {
        "id": "D681PevKs",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "D681PevKs", "name": "get_weather", "content": "sunny"},
    ]
    client.chat.complete(model=MODEL, messages=conversation, tools=[WEATHER_TOOL])

    sent = json_attribute(only_span(), semconv.INPUT_MESSAGES)
    assert sent[1]["parts"] == [
        {
            "type": "tool_call",
            "id": "D681PevKs",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        }
    ]
    assert sent[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "D681PevKs", "response": "sunny"}],
        "name": "get_weather",  # the participant's name, as the conventions' messages carry it
    }


def test_api_error_ends_the_span_as_an_error_and_reaches_the_user(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    with pytest.raises(SDKError) as raised:
        client.chat.complete(model=FAIL_401, messages=QUESTION)

    assert raised.value.status_code == 401
    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "SDKError"


def test_stream_cut_mid_way_records_the_error(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: Mistral
) -> None:
    with pytest.raises(Exception) as raised:
        for _ in client.chat.stream(model=FAIL_MIDSTREAM, messages=QUESTION):
            pass

    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    assert span.attributes[semconv.USAGE_REPORTED] is False
