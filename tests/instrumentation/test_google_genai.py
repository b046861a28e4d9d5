"""google-genai instrumentation: the real client against a local fake of the Gemini API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.collector.demo.fake_server import FakeServer, Reply, Request, sse
from assay.instrumentation import pricing, semconv
from tests.fakes._server import FUNCTION_ARGUMENT
from tests.fakes.fake_gemini import FAIL_400, FAIL_MIDSTREAM, THOUGHTS_TOKENS, FakeGemini
from tests.instrumentation.chat_requests import json_attribute

MODEL = "gemini-2.0-flash"
THINKING_MODEL = "gemini-2.5-flash"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather for a city",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def client(fake: FakeGemini) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url))


def expected_cost(response: Any, model: str) -> float | None:
    usage = response.usage_metadata
    return pricing.cost_usd(
        model,
        usage.prompt_token_count,
        (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
        provider=semconv.PROVIDER_GCP_GEMINI,
    )


def test_generate_content_is_one_client_span_with_usage_cost_and_messages(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    config = types.GenerateContentConfig(
        temperature=0.2, max_output_tokens=200, system_instruction="Answer briefly."
    )
    response = client.models.generate_content(
        model=MODEL, contents="Why is the sky blue?", config=config
    )

    span = only_span()
    attributes = span.attributes
    assert span.name == f"generate_content {MODEL}"
    assert span.kind == SpanKind.CLIENT
    assert attributes[semconv.OPERATION_NAME] == semconv.OP_GENERATE_CONTENT
    assert attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_GCP_GEMINI
    assert attributes[semconv.REQUEST_MODEL] == MODEL
    assert attributes[semconv.RESPONSE_MODEL] == response.model_version
    assert attributes[semconv.RESPONSE_ID] == response.response_id
    assert attributes[semconv.REQUEST_TEMPERATURE] == 0.2
    assert attributes[semconv.REQUEST_MAX_TOKENS] == 200
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[semconv.USAGE_INPUT_TOKENS] == response.usage_metadata.prompt_token_count
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage_metadata.candidates_token_count
    cost = expected_cost(response, MODEL)
    assert cost is not None and cost > 0
    assert attributes[semconv.COST_USD] == pytest.approx(cost)
    assert attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert json_attribute(span, semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Why is the sky blue?"}]}
    ]
    assert json_attribute(span, semconv.SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "Answer briefly."}
    ]
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "model",
            "parts": [{"type": "text", "content": response.text}],
            "finish_reason": "stop",
        }
    ]


def test_thinking_tokens_are_output_tokens_and_priced(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    response = client.models.generate_content(model=THINKING_MODEL, contents="Think about it")

    attributes = only_span().attributes
    candidates = response.usage_metadata.candidates_token_count
    assert response.usage_metadata.thoughts_token_count == THOUGHTS_TOKENS
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == candidates + THOUGHTS_TOKENS
    assert attributes[semconv.USAGE_REASONING_OUTPUT_TOKENS] == THOUGHTS_TOKENS
    assert attributes[semconv.COST_USD] == pytest.approx(expected_cost(response, THINKING_MODEL))


def test_cached_content_tokens_are_priced_at_the_cache_read_price(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    config = types.GenerateContentConfig(cached_content="cachedContents/handbook")
    response = client.models.generate_content(
        model=MODEL, contents="What does the handbook say about leave?", config=config
    )

    usage = response.usage_metadata
    attributes = only_span().attributes
    assert usage.cached_content_token_count
    assert attributes[semconv.USAGE_INPUT_TOKENS] == usage.prompt_token_count
    assert attributes[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage.cached_content_token_count
    cost = pricing.cost_usd(
        MODEL,
        usage.prompt_token_count,
        usage.candidates_token_count,
        cached_input_tokens=usage.cached_content_token_count,
        provider=semconv.PROVIDER_GCP_GEMINI,
    )
    assert cost is not None and cost < expected_cost(response, MODEL)
    assert attributes[semconv.COST_USD] == pytest.approx(cost)


def test_stream_yields_every_chunk_and_ends_the_span_with_joined_text_and_final_usage(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents="Tell me a short story")
    )

    assert len(chunks) == 3
    span = only_span()
    attributes = span.attributes
    last = chunks[-1]
    assert attributes[semconv.REQUEST_STREAM] is True
    assert attributes[semconv.USAGE_INPUT_TOKENS] == last.usage_metadata.prompt_token_count
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == last.usage_metadata.candidates_token_count
    assert attributes[semconv.COST_USD] == pytest.approx(expected_cost(last, MODEL))
    assert attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    text = "".join(chunk.text for chunk in chunks)
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {"role": "model", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


def test_async_generate_and_stream(spans: InMemorySpanExporter, client: genai.Client) -> None:
    async def calls() -> tuple[Any, list[Any]]:
        response = await client.aio.models.generate_content(model=MODEL, contents="Hello async")
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Stream it")
        return response, [chunk async for chunk in stream]

    response, chunks = asyncio.run(calls())

    plain, streamed = spans.get_finished_spans()
    assert plain.attributes[semconv.REQUEST_STREAM] is False
    assert plain.attributes[semconv.USAGE_OUTPUT_TOKENS] == (
        response.usage_metadata.candidates_token_count
    )
    assert streamed.attributes[semconv.REQUEST_STREAM] is True
    assert streamed.attributes[semconv.USAGE_OUTPUT_TOKENS] == (
        chunks[-1].usage_metadata.candidates_token_count
    )
    text = "".join(chunk.text for chunk in chunks)
    assert json_attribute(streamed, semconv.OUTPUT_MESSAGES)[0]["parts"][0]["content"] == text


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_and_tool_definitions_are_captured(
    spans: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    client: genai.Client,
    stream: bool,
) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    if stream:
        list(client.models.generate_content_stream(model=MODEL, contents="Paris?", config=config))
    else:
        client.models.generate_content(model=MODEL, contents="Paris?", config=config)

    span = only_span()
    assert json_attribute(span, semconv.TOOL_DEFINITIONS) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER.function_declarations[0].parameters_json_schema,
        }
    ]
    (output,) = json_attribute(span, semconv.OUTPUT_MESSAGES)
    assert output["parts"] == [
        {
            "type": "tool_call",
            "id": None,
            "name": "get_weather",
            "arguments": {"city": FUNCTION_ARGUMENT},
        }
    ]


def test_automatic_function_calling_makes_one_span_per_model_request(
    spans: InMemorySpanExporter, client: genai.Client
) -> None:
    called: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        called.append(city)
        return "sunny"

    response = client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )

    assert called == [FUNCTION_ARGUMENT]
    first, second = spans.get_finished_spans()
    assert json_attribute(first, semconv.OUTPUT_MESSAGES)[0]["parts"][0]["type"] == "tool_call"
    second_input = json_attribute(second, semconv.INPUT_MESSAGES)
    assert second_input[-1]["parts"] == [
        {"type": "tool_call_response", "id": "get_weather", "response": {"result": "sunny"}}
    ]
    # Each request is billed on its own: the second one's usage is the final response's.
    assert second.attributes[semconv.USAGE_INPUT_TOKENS] == (
        response.usage_metadata.prompt_token_count
    )
    assert (
        first.attributes[semconv.USAGE_INPUT_TOKENS] < second.attributes[semconv.USAGE_INPUT_TOKENS]
    )


def test_api_error_ends_the_span_as_an_error_and_reaches_the_user(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=FAIL_400, contents="Hello")

    assert raised.value.code == 400
    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ClientError"
    assert semconv.USAGE_INPUT_TOKENS not in span.attributes


def test_stream_cut_mid_way_records_the_error_and_the_partial_output(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    received = []
    with pytest.raises(Exception) as raised:
        for chunk in client.models.generate_content_stream(
            model=FAIL_MIDSTREAM, contents="one two three four five six"
        ):
            received.append(chunk.text)

    span = only_span()
    assert len(received) == 2
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
    output = json_attribute(span, semconv.OUTPUT_MESSAGES)
    assert output[0]["parts"][0]["content"] == "".join(received)


def test_consumer_stopping_early_ends_the_span_once(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: genai.Client
) -> None:
    stream = client.models.generate_content_stream(model=MODEL, contents="Tell me more please")
    first = next(iter(stream))
    stream.close()

    assert first.text
    span = only_span()
    assert span.attributes[semconv.STREAM_CLOSED_EARLY] is True
    assert span.status.status_code == StatusCode.UNSET


def test_vertex_ai_client_is_named_as_vertex(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], fake: FakeGemini
) -> None:
    client = genai.Client(
        vertexai=True, api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url)
    )
    client.models.generate_content(model=MODEL, contents="Hello Vertex")

    assert only_span().attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_GCP_VERTEX_AI


def test_capture_off_keeps_content_off_the_span(
    instrument_with: Callable[..., Any],
    span_exporter: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    client: genai.Client,
) -> None:
    instrument_with(capture_content=False)
    config = types.GenerateContentConfig(tools=[WEATHER], system_instruction="Secret rules.")
    client.models.generate_content(model=MODEL, contents="Private question", config=config)

    attributes = only_span().attributes
    for name in (
        semconv.INPUT_MESSAGES,
        semconv.OUTPUT_MESSAGES,
        semconv.SYSTEM_INSTRUCTIONS,
        semconv.TOOL_DEFINITIONS,
    ):
        assert name not in attributes
    assert attributes[semconv.USAGE_INPUT_TOKENS] > 0


# --- a prompt the API blocks: HTTP 200, no candidate, the reason in `promptFeedback` -----------

BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    "modelVersion": MODEL,
    "responseId": "blocked-1",
}


class BlockingGemini(FakeServer):
    """Gemini blocking every prompt, as it answers one its filters stop: no exception raised."""

    def reply(self, request: Request) -> Reply:
        if request.path.endswith(":streamGenerateContent"):
            return Reply(stream=[sse(BLOCKED)], content_type="text/event-stream")
        return Reply(body=BLOCKED)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_a_blocked_prompt_says_why_in_its_finish_reasons(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], streamed: bool
) -> None:
    with BlockingGemini() as server:
        client = genai.Client(
            api_key="test-key", http_options=types.HttpOptions(base_url=server.base_url)
        )
        if streamed:
            (response,) = client.models.generate_content_stream(model=MODEL, contents="x")
        else:
            response = client.models.generate_content(model=MODEL, contents="x")

    assert response.text is None and response.prompt_feedback.block_reason
    attrs = only_span().attributes
    # Not an empty answer that looks like any other: the block is what the call came to.
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("prohibited_content",)
    assert attrs[semconv.USAGE_INPUT_TOKENS] == 8
