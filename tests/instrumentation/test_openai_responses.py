"""OpenAI Responses API and legacy completions: one GenAI span per call, the call unchanged."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.collector.demo.fake_openai import FAIL_429, FAIL_MIDSTREAM, FakeOpenAI
from assay.collector.demo.fake_server import FakeServer, Reply, Request, sse
from assay.instrumentation import pricing, semconv

MODEL = "gpt-4.1-mini"
DATED_MODEL = "gpt-4.1-mini-2025-04-14"
INSTRUCT_MODEL = "gpt-3.5-turbo-instruct"
QUESTION = "Why is the sky blue?"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def async_client(fake: FakeOpenAI) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def output_messages(span: Any) -> list[dict[str, Any]]:
    return list(json.loads(span.attributes[semconv.OUTPUT_MESSAGES]))


def expected_cost(response: Any) -> float | None:
    usage = response.usage
    return pricing.cost_usd(
        response.model,
        usage.input_tokens,
        usage.output_tokens,
        cached_input_tokens=usage.input_tokens_details.cached_tokens,
        provider=semconv.PROVIDER_OPENAI,
    )


class TestResponses:
    def test_one_client_span_per_the_genai_conventions(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        response = client.responses.create(
            model=MODEL,
            input=QUESTION,
            instructions="Answer in one paragraph.",
            temperature=0.4,
            top_p=0.8,
            max_output_tokens=500,
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"chat {MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_CHAT
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_OPENAI
        assert attrs[semconv.REQUEST_MODEL] == MODEL
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0.4
        assert attrs[semconv.REQUEST_TOP_P] == 0.8
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 500
        assert attrs[semconv.REQUEST_STREAM] is False
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.RESPONSE_MODEL] == response.model == DATED_MODEL
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.output_tokens
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == 0
        assert attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] == 0
        cost = expected_cost(response)
        assert cost is not None and cost > 0
        assert attrs[semconv.COST_USD] == pytest.approx(cost)
        assert json.loads(attrs[semconv.SYSTEM_INSTRUCTIONS]) == [
            {"type": "text", "content": "Answer in one paragraph."}
        ]
        assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
        ]
        assert output_messages(span) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": response.output_text}],
                "finish_reason": "stop",
            }
        ]

    def test_function_call_and_its_output(
        self, spans: InMemorySpanExporter, client: OpenAI
    ) -> None:
        ask = [{"role": "user", "content": "Weather in Paris?"}]
        first = client.responses.create(model=MODEL, input=ask, tools=[WEATHER_TOOL])
        call = first.output[0]
        followup = [
            *ask,
            call,  # an output item handed back, as users do
            {"type": "function_call_output", "call_id": call.call_id, "output": "18°C, sunny"},
        ]
        second = client.responses.create(model=MODEL, input=followup, tools=[WEATHER_TOOL])

        call_span, result_span = spans.get_finished_spans()
        tool_call = {
            "type": "tool_call",
            "id": call.call_id,
            "name": "get_weather",
            "arguments": call.arguments,
        }
        assert call_span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
        assert output_messages(call_span) == [
            {"role": "assistant", "parts": [tool_call], "finish_reason": "tool_calls"}
        ]
        assert json.loads(call_span.attributes[semconv.TOOL_DEFINITIONS]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_TOOL["parameters"],
            }
        ]
        messages = json.loads(result_span.attributes[semconv.INPUT_MESSAGES])
        assert messages[1] == {"role": "assistant", "parts": [tool_call]}
        assert messages[2] == {
            "role": "tool",
            "parts": [
                {"type": "tool_call_response", "id": call.call_id, "response": "18°C, sunny"}
            ],
        }
        assert output_messages(result_span)[0]["parts"][0]["content"] == second.output_text

    def test_incomplete_at_max_output_tokens(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        response = client.responses.create(model=MODEL, input=QUESTION, max_output_tokens=16)

        assert response.status == "incomplete"
        assert only_span().attributes[semconv.RESPONSE_FINISH_REASONS] == ("max_output_tokens",)

    def test_async(self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any) -> None:
        async def call() -> Any:
            async with async_client(fake) as client:
                return await client.responses.create(model=MODEL, input=QUESTION)

        response = asyncio.run(call())

        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.output_tokens

    def test_parse_is_one_span(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        response = client.responses.parse(model=MODEL, input=QUESTION)

        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.output_tokens

    def test_error_span_and_same_exception(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model=FAIL_429, input=QUESTION)

        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"


class TestResponsesStreams:
    def test_stream_true(self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any) -> None:
        events = list(client.responses.create(model=MODEL, input=QUESTION, stream=True))

        final = events[-1].response
        span = only_span()
        attrs = span.attributes
        assert events[-1].type == "response.completed"
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.RESPONSE_ID] == final.id
        assert attrs[semconv.USAGE_INPUT_TOKENS] == final.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert attrs[semconv.COST_USD] == pytest.approx(expected_cost(final))
        assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert output_messages(span)[0]["parts"] == [{"type": "text", "content": final.output_text}]
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_events_identical_to_uninstrumented(
        self, instrument_with: Callable[..., TracerProvider], client: OpenAI
    ) -> None:
        def dumps() -> list[dict[str, Any]]:
            stream = client.responses.create(model=MODEL, input=QUESTION, stream=True)
            return [event.model_dump() for event in stream]

        bare = dumps()
        instrument_with()
        assert dumps() == bare

    def test_closed_early_keeps_the_text_so_far_and_no_usage(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        stream = client.responses.create(model=MODEL, input=QUESTION, stream=True)
        text = ""
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
                if len(text.split()) >= 3:
                    break
        stream.close()

        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        assert attrs[semconv.USAGE_REPORTED] is False
        assert attrs[semconv.RESPONSE_ID].startswith("resp_")
        assert output_messages(span)[0]["parts"] == [{"type": "text", "content": text}]

    def test_streamed_function_call_arguments(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        events = list(
            client.responses.create(
                model=MODEL, input="Weather in Oslo?", tools=[WEATHER_TOOL], stream=True
            )
        )

        item = events[-1].response.output[0]
        assert output_messages(only_span())[0]["parts"] == [
            {
                "type": "tool_call",
                "id": item.call_id,
                "name": "get_weather",
                "arguments": item.arguments,
            }
        ]
        assert only_span().attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)

    def test_stream_helper(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with client.responses.stream(model=MODEL, input=QUESTION) as stream:
            final = stream.get_final_response()

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert output_messages(only_span())[0]["parts"][0]["content"] == final.output_text

    def test_stream_helper_left_early_ends_the_span_at_exit(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with client.responses.stream(model=MODEL, input=QUESTION) as stream:
            for _ in stream:
                break
            assert spans.get_finished_spans() == ()

        # ended at the exit of the with block, not later when the stream is collected
        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True
        del stream

    def test_midstream_failure(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        client: OpenAI,
    ) -> None:
        def consume() -> BaseException:
            try:
                for _ in client.responses.create(model=FAIL_MIDSTREAM, input="x", stream=True):
                    pass
            except Exception as error:
                return error
            raise AssertionError("the stream did not fail")

        bare = consume()
        instrument_with()
        traced = consume()

        assert type(traced) is type(bare)
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == type(traced).__qualname__

    def test_async_stream_and_helper(self, spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
        async def consume() -> tuple[Any, Any]:
            async with async_client(fake) as client:
                stream = await client.responses.create(model=MODEL, input=QUESTION, stream=True)
                events = [event async for event in stream]
                async with client.responses.stream(model=MODEL, input=QUESTION) as helper:
                    async for _ in helper:
                        break
                return events[-1].response, helper

        final, helper = asyncio.run(consume())

        complete, early = spans.get_finished_spans()
        assert complete.attributes[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert early.attributes[semconv.STREAM_CLOSED_EARLY] is True
        del helper


class TestChatStreamHelperLeftEarly:
    def test_ends_the_span_at_exit(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with client.chat.completions.stream(
            model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}]
        ) as stream:
            for _ in stream:
                break

        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True
        del stream
        gc.collect()
        assert len(spans.get_finished_spans()) == 1


class TestLegacyCompletions:
    def test_one_text_completion_span(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        completion = client.completions.create(
            model=INSTRUCT_MODEL, prompt="Say this is a test", max_tokens=7, temperature=0
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"text_completion {INSTRUCT_MODEL}"
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_TEXT_COMPLETION
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 7
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0
        assert attrs[semconv.RESPONSE_ID] == completion.id
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("length",)
        assert attrs[semconv.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
        cost = pricing.cost_usd(
            INSTRUCT_MODEL, completion.usage.prompt_tokens, completion.usage.completion_tokens
        )
        assert cost is not None and cost > 0
        assert attrs[semconv.COST_USD] == pytest.approx(cost)
        assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Say this is a test"}]}
        ]
        assert output_messages(span) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": completion.choices[0].text}],
                "finish_reason": "length",
            }
        ]

    def test_stream_with_usage(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        chunks = list(
            client.completions.create(
                model=INSTRUCT_MODEL,
                prompt=["one", "two"],
                max_tokens=200,
                stream=True,
                stream_options={"include_usage": True},
            )
        )

        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        assert output_messages(only_span())[0]["parts"][0]["content"] == text
        assert len(json.loads(attrs[semconv.INPUT_MESSAGES])) == 2

    def test_async(self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any) -> None:
        async def call() -> Any:
            async with async_client(fake) as client:
                return await client.completions.create(model=INSTRUCT_MODEL, prompt="hi")

        completion = asyncio.run(call())

        assert only_span().attributes[semconv.RESPONSE_ID] == completion.id

    def test_token_prompts_are_not_content(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        client.completions.create(model=INSTRUCT_MODEL, prompt=[[1, 2, 3]])

        assert semconv.INPUT_MESSAGES not in only_span().attributes


# --- a failure the API answers in band: the client returns it, the span must say it failed ---

FAILURE = {"code": "server_error", "message": "The model failed to generate a response."}


def failed_response(body: dict[str, Any]) -> dict[str, Any]:
    """A Response the API reports as failed (HTTP 200, `status: failed`, its `error`)."""
    return {**body, "status": "failed", "error": FAILURE, "output": []}


def failing_final_event(event: dict[str, Any]) -> dict[str, Any]:
    """A stream's last event as `response.failed`, the way the API ends a failed stream."""
    if event.get("type") != "response.completed":
        return event
    return {**event, "type": "response.failed", "response": failed_response(event["response"])}


class ErrorEventServer(FakeServer):
    """A Responses stream that the API ends with an `error` event after the first text delta
    (the client yields it as a `ResponseErrorEvent` and raises nothing)."""

    def reply(self, request: Request) -> Reply:
        item = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": DATED_MODEL,
            "status": "in_progress",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        events = [
            ("response.created", {"response": response}),
            ("response.output_item.added", {"output_index": 0, "item": item}),
            (
                "response.content_part.added",
                {
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
            ),
            (
                "response.output_text.delta",
                {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "The sky"},
            ),
            ("error", {"code": FAILURE["code"], "message": FAILURE["message"], "param": None}),
        ]
        pieces = [
            sse({"type": kind, "sequence_number": number, **data}, kind)
            for number, (kind, data) in enumerate(events)
        ]
        return Reply(stream=pieces, content_type="text/event-stream")


def assert_failed(span: Any) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == FAILURE["message"]
    assert span.attributes[semconv.ERROR_TYPE] == FAILURE["code"]


class TestResponsesFailedInBand:
    def test_a_failed_response_is_an_error_span_with_its_usage(
        self, instrument_with: Callable[..., TracerProvider], only_span: Any
    ) -> None:
        instrument_with(capture_content=True)
        with (
            FakeOpenAI(mutate=failed_response) as fake,
            OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client,
        ):
            response = client.responses.create(model=MODEL, input=QUESTION)

        assert response.status == "failed"  # returned, not raised: only the span can tell
        span = only_span()
        assert_failed(span)
        assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("error",)
        # The tokens the failed call used are still billed.
        assert span.attributes[semconv.USAGE_INPUT_TOKENS] == response.usage.input_tokens

    def test_a_stream_ending_in_response_failed_is_an_error_span(
        self, instrument_with: Callable[..., TracerProvider], only_span: Any
    ) -> None:
        instrument_with(capture_content=True)
        with (
            FakeOpenAI(mutate=failing_final_event) as fake,
            OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client,
        ):
            events = list(client.responses.create(model=MODEL, input=QUESTION, stream=True))

        assert events[-1].type == "response.failed"
        assert_failed(only_span())

    def test_a_stream_ending_in_an_error_event_is_an_error_span(
        self, instrument_with: Callable[..., TracerProvider], only_span: Any
    ) -> None:
        instrument_with(capture_content=True)
        with (
            ErrorEventServer() as server,
            OpenAI(base_url=f"{server.base_url}/v1", api_key="test-key", max_retries=0) as client,
        ):
            events = list(client.responses.create(model=MODEL, input=QUESTION, stream=True))

        assert events[-1].type == "error"
        span = only_span()
        assert_failed(span)
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes  # the API ended it, not the app
        (message,) = output_messages(span)
        assert message["parts"] == [{"type": "text", "content": "The sky"}]

    def test_the_stream_helper_ending_in_an_error_event_is_an_error_span(
        self, instrument_with: Callable[..., TracerProvider], only_span: Any
    ) -> None:
        instrument_with()
        with (
            ErrorEventServer() as server,
            OpenAI(base_url=f"{server.base_url}/v1", api_key="test-key", max_retries=0) as client,
        ):
            with client.responses.stream(model=MODEL, input=QUESTION) as stream:
                events = list(stream)

        assert events[-1].type == "error"
        assert_failed(only_span())

    def test_async_stream_ending_in_an_error_event_is_an_error_span(
        self, instrument_with: Callable[..., TracerProvider], only_span: Any
    ) -> None:
        instrument_with()

        async def consume(server: ErrorEventServer) -> list[Any]:
            async with AsyncOpenAI(
                base_url=f"{server.base_url}/v1", api_key="test-key", max_retries=0
            ) as client:
                stream = await client.responses.create(model=MODEL, input=QUESTION, stream=True)
                return [event async for event in stream]

        with ErrorEventServer() as server:
            events = asyncio.run(consume(server))

        assert events[-1].type == "error"
        assert_failed(only_span())
