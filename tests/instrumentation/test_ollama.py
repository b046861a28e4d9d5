"""ollama instrumentation: the real client against a local fake of the Ollama server API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import ollama
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.instrumentation import pricing, semconv
from tests.fakes._server import FUNCTION_ARGUMENT
from tests.fakes.fake_ollama import CACHED_PROMPT, FAIL_MIDSTREAM, MISSING, FakeOllama
from tests.instrumentation.chat_requests import (
    QUESTION,
    WEATHER_TOOL,
    json_attribute,
    text_messages,
)

MODEL = "llama3.2"
# A local model whose name also names a priced API model: still free to run here.
LOCAL_NAMESAKE = "mistral-small:24b"


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def client(fake: FakeOllama) -> ollama.Client:
    return ollama.Client(host=fake.base_url)


def test_chat_is_one_client_span_with_tokens_messages_and_no_cost(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    # Positional model and messages, as the library's own examples write them.
    response = client.chat(MODEL, QUESTION, options={"temperature": 0.3, "num_predict": 100})

    span = only_span()
    attributes = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind == SpanKind.CLIENT
    assert attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_OLLAMA
    assert attributes[semconv.REQUEST_MODEL] == MODEL
    assert attributes[semconv.RESPONSE_MODEL] == response.model
    assert attributes[semconv.REQUEST_TEMPERATURE] == 0.3
    assert attributes[semconv.REQUEST_MAX_TOKENS] == 100
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[semconv.USAGE_INPUT_TOKENS] == response.prompt_eval_count
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == response.eval_count
    assert semconv.COST_USD not in attributes  # a local model has no price: NULL, never 0
    assert attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
    assert json_attribute(span, semconv.INPUT_MESSAGES) == text_messages(QUESTION)
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.message.content}],
            "finish_reason": "stop",
        }
    ]


def test_a_local_model_named_like_an_api_model_is_not_priced(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    client.chat(model=LOCAL_NAMESAKE, messages=QUESTION)

    attributes = only_span().attributes
    assert attributes[semconv.USAGE_INPUT_TOKENS] > 0
    assert semconv.COST_USD not in attributes
    # The collector prices spans that lack a cost: it must not price this one either.
    assert pricing.cost_usd(LOCAL_NAMESAKE, 1000, 1000, provider=semconv.PROVIDER_OLLAMA) is None
    assert pricing.cost_usd(LOCAL_NAMESAKE, 1000, 1000) is not None


def test_chat_stream_yields_every_chunk_and_records_the_done_counts(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    chunks = list(client.chat(model=MODEL, messages=QUESTION, stream=True))

    final = chunks[-1]
    assert final.done
    text = "".join(chunk.message.content for chunk in chunks)
    span = only_span()
    attributes = span.attributes
    assert attributes[semconv.REQUEST_STREAM] is True
    assert attributes[semconv.USAGE_INPUT_TOKENS] == final.prompt_eval_count
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == final.eval_count
    assert attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert json_attribute(span, semconv.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    ]


def test_generate_is_a_text_completion_with_prompt_and_system(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    response = client.generate(MODEL, "Complete this sentence", system="Be brief.")

    span = only_span()
    assert span.name == f"text_completion {MODEL}"
    assert span.attributes[semconv.OPERATION_NAME] == semconv.OP_TEXT_COMPLETION
    assert json_attribute(span, semconv.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Complete this sentence"}]}
    ]
    assert json_attribute(span, semconv.SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json_attribute(span, semconv.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": response.response}
    ]
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.eval_count


def test_prompt_served_from_cache_leaves_input_tokens_unknown_not_zero(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    chunks = list(client.generate(CACHED_PROMPT, "Complete this", stream=True))

    assert chunks[-1].prompt_eval_count is None
    attributes = only_span().attributes
    assert semconv.USAGE_INPUT_TOKENS not in attributes
    assert attributes[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count


def test_async_chat_generate_and_stream(spans: InMemorySpanExporter, fake: FakeOllama) -> None:
    client = ollama.AsyncClient(host=fake.base_url)

    async def calls() -> tuple[Any, Any, list[Any]]:
        chat = await client.chat(model=MODEL, messages=QUESTION)
        generated = await client.generate(model=MODEL, prompt="Complete this")
        stream = await client.chat(model=MODEL, messages=QUESTION, stream=True)
        return chat, generated, [chunk async for chunk in stream]

    chat, generated, chunks = asyncio.run(calls())

    plain, completion, streamed = spans.get_finished_spans()
    assert plain.attributes[semconv.USAGE_OUTPUT_TOKENS] == chat.eval_count
    assert completion.attributes[semconv.OPERATION_NAME] == semconv.OP_TEXT_COMPLETION
    assert completion.attributes[semconv.USAGE_OUTPUT_TOKENS] == generated.eval_count
    assert streamed.attributes[semconv.REQUEST_STREAM] is True
    assert streamed.attributes[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].eval_count


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_and_definitions_are_captured(
    spans: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    client: ollama.Client,
    stream: bool,
) -> None:
    question = [{"role": "user", "content": "Weather in Paris?"}]
    result = client.chat(model=MODEL, messages=question, tools=[WEATHER_TOOL], stream=stream)
    if stream:
        list(result)

    span = only_span()
    assert json_attribute(span, semconv.TOOL_DEFINITIONS) == [
        {"type": "function", **WEATHER_TOOL["function"]}
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


def test_python_function_tools_are_named(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    def add_two_numbers(a: int, b: int) -> int:
        """Add two numbers.

        Args:
          a: The first number
          b: The second number
        """
        return a + b

    client.chat(
        model=MODEL, messages=[{"role": "user", "content": "1+2?"}], tools=[add_two_numbers]
    )

    definitions = json_attribute(only_span(), semconv.TOOL_DEFINITIONS)
    assert definitions == [{"type": "function", "name": "add_two_numbers"}]


def test_missing_model_ends_the_span_as_an_error_and_reaches_the_user(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model=MISSING, messages=QUESTION)

    assert raised.value.status_code == 404
    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"


def test_error_line_mid_stream_records_the_error_and_the_partial_output(
    spans: InMemorySpanExporter, only_span: Callable[[], ReadableSpan], client: ollama.Client
) -> None:
    received = []
    with pytest.raises(ollama.ResponseError):
        for chunk in client.chat(model=FAIL_MIDSTREAM, messages=QUESTION, stream=True):
            received.append(chunk.message.content)

    span = only_span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[semconv.USAGE_REPORTED] is False
    assert json_attribute(span, semconv.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "text", "content": "".join(received)}
    ]


def test_module_level_chat_uses_the_instrumented_client(
    spans: InMemorySpanExporter,
    only_span: Callable[[], ReadableSpan],
    fake: FakeOllama,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `ollama.chat` is bound to a default client made at import; point it at the fake.
    monkeypatch.setattr(ollama._client._client, "base_url", fake.base_url)  # type: ignore[attr-defined]
    ollama.chat(model=MODEL, messages=QUESTION)

    assert only_span().attributes[semconv.PROVIDER_NAME] == semconv.PROVIDER_OLLAMA
