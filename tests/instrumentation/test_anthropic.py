"""Anthropic instrumentation: one GenAI span per messages call, the user's call unchanged."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.instrumentation import instrument, pricing, semconv, uninstrument
from assay.instrumentation.providers import anthropic as anthropic_provider
from assay.instrumentation.providers._request import EndpointCache
from tests.fakes.fake_anthropic import (
    FAIL_400,
    FAIL_429,
    FAIL_529,
    FAIL_MIDSTREAM,
    RESPONSE_MODELS,
    FakeAnthropic,
)

MODEL = "claude-haiku-4-5"
DATED_MODEL = RESPONSE_MODELS[MODEL]
QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]
SYSTEM = "You answer in one paragraph."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ANY_CONTENT = (
    semconv.INPUT_MESSAGES,
    semconv.OUTPUT_MESSAGES,
    semconv.TOOL_DEFINITIONS,
    semconv.SYSTEM_INSTRUCTIONS,
)
TOKEN_ATTRIBUTES = (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS, semconv.COST_USD)


def async_client(fake: FakeAnthropic) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=0)


def create(client: Anthropic, **options: Any) -> Any:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 400, "messages": QUESTION, **options}
    return client.messages.create(**params)


def expected_cost(model: str, usage: Any) -> float | None:
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return pricing.cost_usd(
        model,
        usage.input_tokens + read + written,
        usage.output_tokens,
        cached_input_tokens=read,
        cache_creation_input_tokens=written,
        provider=semconv.PROVIDER_ANTHROPIC,
    )


def output_messages(span: Any) -> list[dict[str, Any]]:
    return list(json.loads(span.attributes[semconv.OUTPUT_MESSAGES]))


class TestMessages:
    def test_one_client_span_per_the_genai_conventions(
        self,
        spans: InMemorySpanExporter,
        anthropic_client: Anthropic,
        fake_anthropic: FakeAnthropic,
        only_span: Any,
    ) -> None:
        message = create(
            anthropic_client,
            system=SYSTEM,
            extra_body={"temperature": 0.3, "top_p": 0.9, "top_k": 40},
            stop_sequences=["\n\nHuman:"],
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"chat {MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_CHAT
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_ANTHROPIC
        assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert attrs[semconv.SERVER_PORT] == int(fake_anthropic.base_url.rsplit(":", 1)[1])
        assert attrs[semconv.REQUEST_MODEL] == MODEL
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 400
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0.3
        assert attrs[semconv.REQUEST_TOP_P] == 0.9
        assert attrs[semconv.REQUEST_TOP_K] == 40
        assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("\n\nHuman:",)
        assert attrs[semconv.REQUEST_STREAM] is False
        assert attrs[semconv.RESPONSE_ID] == message.id
        assert attrs[semconv.RESPONSE_MODEL] == message.model == DATED_MODEL
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        assert attrs[semconv.USAGE_REPORTED] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == message.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == 0
        assert attrs[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] == 0
        cost = expected_cost(DATED_MODEL, message.usage)
        assert cost is not None and cost > 0
        assert attrs[semconv.COST_USD] == pytest.approx(cost)
        assert semconv.ERROR_TYPE not in attrs

    def test_system_input_and_output_messages(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        system = [{"type": "text", "text": SYSTEM}, {"type": "text", "text": "Be kind."}]
        message = create(anthropic_client, system=system)

        span = only_span()
        assert json.loads(span.attributes[semconv.SYSTEM_INSTRUCTIONS]) == [
            {"type": "text", "content": SYSTEM},
            {"type": "text", "content": "Be kind."},
        ]
        assert json.loads(span.attributes[semconv.INPUT_MESSAGES]) == [
            {"role": "user", "parts": [{"type": "text", "content": QUESTION[0]["content"]}]}
        ]
        assert output_messages(span) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": message.content[0].text}],
                "finish_reason": "end_turn",
            }
        ]

    def test_prompt_caching_counts_and_prices_cache_reads_and_writes(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic
    ) -> None:
        long_system = [
            {
                "type": "text",
                "text": "You are a careful assistant for a bank. " * 60,
                "cache_control": {"type": "ephemeral"},
            }
        ]
        first = create(anthropic_client, system=long_system)
        second = create(anthropic_client, system=long_system)

        written_span, read_span = spans.get_finished_spans()
        written = first.usage.cache_creation_input_tokens
        read = second.usage.cache_read_input_tokens
        assert written > 100 and first.usage.cache_read_input_tokens == 0
        assert read == written and second.usage.cache_creation_input_tokens == 0
        # input tokens include the cached ones, as the conventions say (Anthropic's exclude them)
        attrs = written_span.attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == first.usage.input_tokens + written
        assert attrs[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] == written
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == 0
        attrs = read_span.attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == second.usage.input_tokens + read
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == read
        # Writes cost 1.25x and reads 0.1x the input price: the two calls differ accordingly.
        price = pricing.lookup(DATED_MODEL)
        assert price is not None and price.cache_write and price.cached_input
        write_cost = written_span.attributes[semconv.COST_USD]
        read_cost = read_span.attributes[semconv.COST_USD]
        assert write_cost == pytest.approx(expected_cost(DATED_MODEL, first.usage))
        assert read_cost == pytest.approx(expected_cost(DATED_MODEL, second.usage))
        assert write_cost - read_cost == pytest.approx(
            written * (price.cache_write - price.cached_input) / 1e6
        )

    @pytest.mark.parametrize(
        ("options", "finish_reason"),
        [({"max_tokens": 5}, "max_tokens"), ({"stop_sequences": ["."]}, "stop_sequence")],
    )
    def test_stop_reason_is_the_finish_reason(
        self,
        spans: InMemorySpanExporter,
        anthropic_client: Anthropic,
        only_span: Any,
        options: dict[str, Any],
        finish_reason: str,
    ) -> None:
        message = create(anthropic_client, **options)

        assert message.stop_reason == finish_reason
        span = only_span()
        assert span.attributes[semconv.RESPONSE_FINISH_REASONS] == (finish_reason,)
        assert output_messages(span)[0]["finish_reason"] == finish_reason

    def test_thinking_is_a_reasoning_part(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        message = create(
            anthropic_client, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}
        )

        parts = output_messages(only_span())[0]["parts"]
        assert parts[0] == {"type": "reasoning", "content": message.content[0].thinking}
        assert parts[1] == {"type": "text", "content": message.content[1].text}

    def test_async(self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic) -> None:
        async def call() -> Any:
            async with async_client(fake_anthropic) as client:
                return await client.messages.create(model=MODEL, max_tokens=400, messages=QUESTION)

        message = asyncio.run(call())

        (span,) = spans.get_finished_spans()
        attrs = span.attributes
        assert span.name == f"chat {MODEL}"
        assert attrs[semconv.RESPONSE_ID] == message.id
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
        assert attrs[semconv.COST_USD] == pytest.approx(expected_cost(DATED_MODEL, message.usage))
        assert output_messages(span)[0]["parts"][0]["content"] == message.content[0].text

    def test_parse_is_one_span(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        parsed = anthropic_client.messages.parse(model=MODEL, max_tokens=400, messages=QUESTION)

        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_ID] == parsed.id
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == parsed.usage.output_tokens

    def test_beta_messages(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        message = anthropic_client.beta.messages.create(
            model=MODEL, max_tokens=400, messages=QUESTION
        )

        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_ID] == message.id
        assert attrs[semconv.USAGE_INPUT_TOKENS] == message.usage.input_tokens

    def test_with_raw_response_is_one_span_and_left_unread(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        raw = anthropic_client.messages.with_raw_response.create(
            model=MODEL, max_tokens=400, messages=QUESTION
        )

        assert raw.parse().usage.output_tokens > 0
        span = only_span()
        assert span.name == f"chat {MODEL}"
        assert span.status.status_code is StatusCode.UNSET

    def test_span_is_a_child_of_the_current_span(
        self,
        spans: InMemorySpanExporter,
        anthropic_client: Anthropic,
        tracer_provider: TracerProvider,
    ) -> None:
        with tracer_provider.get_tracer("test").start_as_current_span("handle") as parent:
            create(anthropic_client)

        llm = next(s for s in spans.get_finished_spans() if s.name.startswith("chat"))
        assert llm.parent is not None
        assert llm.parent.span_id == parent.get_span_context().span_id


class TestToolUse:
    def test_tool_definitions_tool_use_and_tool_result(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic
    ) -> None:
        ask = [{"role": "user", "content": "Weather in Paris?"}]
        first = create(anthropic_client, messages=ask, tools=[WEATHER_TOOL])
        tool_use = first.content[0]
        followup = [
            *ask,
            {"role": "assistant", "content": first.content},  # response blocks handed back
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "18°C, sunny"}
                ],
            },
        ]
        create(anthropic_client, messages=followup, tools=[WEATHER_TOOL])

        call_span, result_span = spans.get_finished_spans()
        assert call_span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
        tool_call = {
            "type": "tool_call",
            "id": tool_use.id,
            "name": "get_weather",
            "arguments": {"city": "Weather in Paris?"},
        }
        assert output_messages(call_span) == [
            {"role": "assistant", "parts": [tool_call], "finish_reason": "tool_use"}
        ]
        assert json.loads(call_span.attributes[semconv.TOOL_DEFINITIONS]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_TOOL["input_schema"],
            }
        ]
        messages = json.loads(result_span.attributes[semconv.INPUT_MESSAGES])
        assert messages[1] == {"role": "assistant", "parts": [tool_call]}
        assert messages[2] == {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": tool_use.id, "response": "18°C, sunny"}],
        }
        assert result_span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)

    def test_images_keep_their_type_not_their_bytes(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        content = [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "A" * 5000},
            },
        ]
        create(anthropic_client, messages=[{"role": "user", "content": content}])

        (message,) = json.loads(only_span().attributes[semconv.INPUT_MESSAGES])
        assert message["parts"] == [
            {"type": "text", "content": "What is in these images?"},
            {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
            {"type": "blob", "modality": "image", "mime_type": "image/png"},
        ]


def stream_events(client: Anthropic, **options: Any) -> Any:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 400, "messages": QUESTION, **options}
    return client.messages.create(stream=True, **params)


def streamed_text(events: list[Any]) -> str:
    return "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


class TestCreateStream:
    def test_usage_finish_reason_and_text(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        events = list(stream_events(anthropic_client))

        span = only_span()
        attrs = span.attributes
        start, delta = events[0], next(e for e in events if e.type == "message_delta")
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.RESPONSE_ID] == start.message.id
        assert attrs[semconv.RESPONSE_MODEL] == DATED_MODEL
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        assert attrs[semconv.USAGE_REPORTED] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == start.message.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens > 1
        assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert output_messages(span) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": streamed_text(events)}],
                "finish_reason": "end_turn",
            }
        ]
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_tool_input_fragments_are_joined(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        events = list(stream_events(anthropic_client, tools=[WEATHER_TOOL]))

        block = next(e for e in events if e.type == "content_block_start").content_block
        fragments = [
            e.delta.partial_json
            for e in events
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        assert len(fragments) > 1
        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
        assert output_messages(only_span())[0]["parts"] == [
            {
                "type": "tool_call",
                "id": block.id,
                "name": "get_weather",
                "arguments": json.loads("".join(fragments)),
            }
        ]

    def test_events_identical_to_uninstrumented(
        self, instrument_with: Callable[..., TracerProvider], anthropic_client: Anthropic
    ) -> None:
        def dumps() -> list[dict[str, Any]]:
            return [event.model_dump() for event in stream_events(anthropic_client)]

        bare = dumps()
        instrument_with()
        traced = dumps()

        assert traced == bare
        assert len(traced) > 10

    def test_break_then_close_ends_once_as_closed_early(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        stream = stream_events(anthropic_client)
        for index, event in enumerate(stream):
            if index == 0:
                started = event.message.usage
            if index == 3:
                break
        stream.close()

        attrs = only_span().attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        # The input side message_start reported is billed and kept, with its cost; the output
        # count is message_start's placeholder until message_delta, which never came: unknown.
        assert attrs[semconv.USAGE_INPUT_TOKENS] == started.input_tokens
        assert attrs[semconv.USAGE_REPORTED] is True
        assert semconv.USAGE_OUTPUT_TOKENS not in attrs
        assert attrs[semconv.COST_USD] == pytest.approx(
            pricing.cost_usd(MODEL, started.input_tokens, None, provider=semconv.PROVIDER_ANTHROPIC)
        )
        assert semconv.RESPONSE_FINISH_REASONS not in attrs
        assert output_messages(only_span())[0]["parts"][0]["content"]

    def test_closed_early_keeps_the_reported_cache_reads_and_writes(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        long_system = [
            {"type": "text", "text": "Rules. " * 1500, "cache_control": {"type": "ephemeral"}}
        ]
        for _ in range(2):  # the first writes the cache, the second reads it
            stream = stream_events(anthropic_client, system=long_system)
            started = next(iter(stream)).message.usage
            stream.close()

        first, second = (span.attributes for span in spans.get_finished_spans())
        assert first[semconv.USAGE_CACHE_CREATION_INPUT_TOKENS] > 0
        assert second[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == started.cache_read_input_tokens > 0
        assert second[semconv.USAGE_INPUT_TOKENS] == (
            started.input_tokens + started.cache_read_input_tokens
        )

    def test_garbage_collected_stream_ends_the_span(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        stream = stream_events(anthropic_client)
        next(iter(stream))
        assert spans.get_finished_spans() == ()

        del stream
        gc.collect()

        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True

    def test_error_event_mid_stream_raises_the_same_exception(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        anthropic_client: Anthropic,
    ) -> None:
        def consume() -> tuple[int, BaseException]:
            received = 0
            try:
                for _ in stream_events(anthropic_client, model=FAIL_MIDSTREAM):
                    received += 1
            except Exception as error:
                return received, error
            raise AssertionError("the stream did not fail")

        bare_received, bare_error = consume()
        instrument_with()
        received, error = consume()

        assert type(error) is type(bare_error) is anthropic.APIStatusError
        assert str(error) == str(bare_error)
        assert received == bare_received > 0
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "APIStatusError"
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes

    def test_async(self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic) -> None:
        async def consume() -> list[Any]:
            async with async_client(fake_anthropic) as client:
                stream = await client.messages.create(
                    model=MODEL, max_tokens=400, messages=QUESTION, stream=True
                )
                events = [event async for event in stream]
                early = await client.messages.create(
                    model=MODEL, max_tokens=400, messages=QUESTION, stream=True
                )
                await early.__anext__()
                await early.close()
                return events

        events = asyncio.run(consume())

        complete, early = spans.get_finished_spans()
        delta = next(e for e in events if e.type == "message_delta")
        assert complete.attributes[semconv.USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens
        assert output_messages(complete)[0]["parts"][0]["content"] == streamed_text(events)
        assert early.attributes[semconv.STREAM_CLOSED_EARLY] is True


class TestStreamHelper:
    """`messages.stream(...)`: one span, ended once, however the stream is read or left."""

    @staticmethod
    def helper(client: Anthropic, **options: Any) -> Any:
        params: dict[str, Any] = {"model": MODEL, "max_tokens": 400, "messages": QUESTION}
        return client.messages.stream(**{**params, **options})

    def test_events(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with self.helper(anthropic_client) as stream:
            events = list(stream)
            final = stream.get_final_message()

        assert any(event.type == "text" for event in events)  # the helper's own events
        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.RESPONSE_ID] == final.id
        assert attrs[semconv.USAGE_INPUT_TOKENS] == final.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert attrs[semconv.COST_USD] == pytest.approx(expected_cost(DATED_MODEL, final.usage))
        assert output_messages(only_span())[0]["parts"] == [
            {"type": "text", "content": final.content[0].text}
        ]
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_text_stream(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with self.helper(anthropic_client) as stream:
            text = "".join(stream.text_stream)

        assert output_messages(only_span())[0]["parts"][0]["content"] == text
        assert semconv.STREAM_CLOSED_EARLY not in only_span().attributes

    def test_get_final_message_only(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with self.helper(anthropic_client, tools=[WEATHER_TOOL]) as stream:
            final = stream.get_final_message()

        tool_use = final.content[0]
        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
        assert output_messages(only_span())[0]["parts"] == [
            {
                "type": "tool_call",
                "id": tool_use.id,
                "name": tool_use.name,
                "arguments": tool_use.input,
            }
        ]

    def test_thinking_stream(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with self.helper(
            anthropic_client, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}
        ) as stream:
            final = stream.get_final_message()

        parts = output_messages(only_span())[0]["parts"]
        assert parts[0] == {"type": "reasoning", "content": final.content[0].thinking}

    def test_leaving_early_ends_the_span_once(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with self.helper(anthropic_client) as stream:
            for _ in stream.text_stream:
                break

        attrs = only_span().attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0  # message_start's, reported
        assert semconv.USAGE_OUTPUT_TOKENS not in attrs

    def test_an_exception_in_the_with_body_propagates_and_ends_the_span(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with pytest.raises(KeyError, match="user code"):
            with self.helper(anthropic_client) as stream:
                next(iter(stream))
                raise KeyError("user code")

        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True

    def test_request_error_on_enter(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with pytest.raises(anthropic.RateLimitError):
            with self.helper(anthropic_client, model=FAIL_429):
                pass

        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"

    def test_error_event_mid_stream(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            with self.helper(anthropic_client, model=FAIL_MIDSTREAM) as stream:
                stream.get_final_message()

        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "APIStatusError"

    def test_no_span_before_enter(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, fake_anthropic: Any
    ) -> None:
        manager = self.helper(anthropic_client)
        assert spans.get_finished_spans() == () and fake_anthropic.requests == []
        with manager as stream:
            stream.until_done()
        assert len(spans.get_finished_spans()) == 1

    def test_beta_stream(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with anthropic_client.beta.messages.stream(
            model=MODEL, max_tokens=400, messages=QUESTION
        ) as stream:
            final = stream.get_final_message()

        assert only_span().attributes[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens

    def test_async_events_text_and_early_exit(
        self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic
    ) -> None:
        async def consume() -> tuple[Any, str]:
            async with async_client(fake_anthropic) as client:
                params: dict[str, Any] = {"model": MODEL, "max_tokens": 400, "messages": QUESTION}
                async with client.messages.stream(**params) as stream:
                    final = await stream.get_final_message()
                async with client.messages.stream(**params) as stream:
                    text = "".join([t async for t in stream.text_stream])
                async with client.messages.stream(**params) as stream:
                    async for _ in stream:
                        break
                return final, text

        final, text = asyncio.run(consume())

        by_final, by_text, left = spans.get_finished_spans()
        assert by_final.attributes[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert output_messages(by_text)[0]["parts"][0]["content"] == text
        assert semconv.STREAM_CLOSED_EARLY not in by_final.attributes
        assert semconv.STREAM_CLOSED_EARLY not in by_text.attributes
        assert left.attributes[semconv.STREAM_CLOSED_EARLY] is True


class TestErrors:
    @pytest.mark.parametrize(
        ("model", "error_class"),
        [
            (FAIL_429, anthropic.RateLimitError),
            (FAIL_529, anthropic.OverloadedError),
            (FAIL_400, anthropic.BadRequestError),
        ],
    )
    def test_error_span_and_same_exception(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        anthropic_client: Anthropic,
        model: str,
        error_class: type[anthropic.APIStatusError],
    ) -> None:
        with pytest.raises(error_class) as bare:
            create(anthropic_client, model=model)
        instrument_with()
        with pytest.raises(error_class) as traced:
            create(anthropic_client, model=model)

        assert traced.value.status_code == bare.value.status_code
        assert traced.value.body == bare.value.body
        (span,) = span_exporter.get_finished_spans()
        assert span.name == f"chat {model}"
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == error_class.__qualname__
        (event,) = span.events
        assert event.name == "exception"
        assert semconv.USAGE_INPUT_TOKENS not in span.attributes

    def test_async_error(self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic) -> None:
        async def call() -> None:
            async with async_client(fake_anthropic) as client:
                await client.messages.create(model=FAIL_529, max_tokens=10, messages=QUESTION)

        with pytest.raises(anthropic.OverloadedError):
            asyncio.run(call())

        (span,) = spans.get_finished_spans()
        assert span.attributes[semconv.ERROR_TYPE] == "OverloadedError"

    def test_connection_refused(self, spans: InMemorySpanExporter, only_span: Any) -> None:
        with FakeAnthropic() as fake:
            base_url = fake.base_url  # the port is closed once the fake stops
        with (
            Anthropic(base_url=base_url, api_key="k", max_retries=0) as client,
            pytest.raises(anthropic.APIConnectionError),
        ):
            create(client)

        assert only_span().attributes[semconv.ERROR_TYPE] == "APIConnectionError"


class TestContentCapture:
    def test_off_drops_content_but_keeps_tokens_and_finish_reasons(
        self,
        instrument_with: Callable[..., TracerProvider],
        anthropic_client: Anthropic,
        only_span: Any,
    ) -> None:
        instrument_with(capture_content=False)

        message = create(anthropic_client, system=SYSTEM, tools=[WEATHER_TOOL])

        attrs = only_span().attributes
        assert not set(ANY_CONTENT) & set(attrs)
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)

    def test_off_for_streams(
        self,
        instrument_with: Callable[..., TracerProvider],
        anthropic_client: Anthropic,
        only_span: Any,
    ) -> None:
        instrument_with(capture_content=False)

        events = list(stream_events(anthropic_client))

        attrs = only_span().attributes
        assert not set(ANY_CONTENT) & set(attrs)
        delta = next(e for e in events if e.type == "message_delta")
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens


class TestTheClientsOwnSpans:
    """anthropic >= 2 traces its API calls itself; inside an Assay span that span is left out."""

    def test_one_llm_span_per_call(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        tracer_provider: TracerProvider,
        fake_anthropic: FakeAnthropic,
    ) -> None:
        client = Anthropic(
            base_url=fake_anthropic.base_url,
            api_key="k",
            max_retries=0,
            open_telemetry={"tracer_provider": tracer_provider},
        )
        create(client)
        (bare,) = span_exporter.get_finished_spans()
        assert bare.attributes[semconv.OPERATION_NAME] == semconv.OP_CHAT  # a second LLM span
        span_exporter.clear()

        instrument_with()
        create(client)
        with client.messages.stream(model=MODEL, max_tokens=50, messages=QUESTION) as stream:
            stream.until_done()

        names = [span.name for span in span_exporter.get_finished_spans()]
        assert names == [f"chat {MODEL}", f"chat {MODEL}"]


class TestProviderDetection:
    @pytest.mark.parametrize(
        ("make_client", "provider", "address"),
        [
            (
                lambda: Anthropic(api_key="k"),
                semconv.PROVIDER_ANTHROPIC,
                "api.anthropic.com",
            ),
            (
                lambda: anthropic.AnthropicBedrock(
                    aws_region="us-east-1", aws_access_key="a", aws_secret_key="s"
                ),
                semconv.PROVIDER_AWS_BEDROCK,
                "bedrock-runtime.us-east-1.amazonaws.com",
            ),
            (
                lambda: anthropic.AnthropicVertex(
                    region="us-east5", project_id="p", access_token="t"
                ),
                semconv.PROVIDER_GCP_VERTEX_AI,
                "us-east5-aiplatform.googleapis.com",
            ),
        ],
        ids=["anthropic", "bedrock", "vertex"],
    )
    def test_from_the_client(
        self, make_client: Callable[[], Any], provider: str, address: str
    ) -> None:
        client = make_client()

        endpoint = EndpointCache(anthropic_provider.detect_endpoint).get(client.messages)

        assert endpoint.provider == provider
        assert endpoint.server[semconv.SERVER_ADDRESS] == address
        assert endpoint.server[semconv.SERVER_PORT] == 443


class TestInstrumentor:
    def test_uninstrument_restores_the_original_methods(
        self, tracer_provider: TracerProvider
    ) -> None:
        import anthropic._base_client as base_client
        from anthropic.resources.messages import AsyncMessages, Messages

        methods = [
            (cls, name)
            for cls in (Messages, AsyncMessages)
            for name in ("create", "parse", "stream")
        ]
        originals = [vars(cls)[name] for cls, name in methods]
        original_sdk_span = base_client.start_api_call_span

        instrument(tracer_provider=tracer_provider)
        try:
            assert all(vars(c)[n] is not o for (c, n), o in zip(methods, originals, strict=True))
            assert base_client.start_api_call_span is not original_sdk_span
        finally:
            uninstrument()

        assert [vars(cls)[name] for cls, name in methods] == originals
        assert base_client.start_api_call_span is original_sdk_span

    def test_no_spans_after_uninstrument(
        self,
        tracer_provider: TracerProvider,
        span_exporter: InMemorySpanExporter,
        anthropic_client: Anthropic,
    ) -> None:
        instrument(tracer_provider=tracer_provider)
        uninstrument()

        create(anthropic_client)
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=50, messages=QUESTION
        ) as stream:
            stream.until_done()

        assert span_exporter.get_finished_spans() == ()


class TestCloudClientsBetaMessages:
    """The Vertex and Bedrock clients' beta messages are classes of their own whose `create` is
    the beta `Messages.create`, taken as anthropic was imported: patched as aliases, their calls
    make spans however early anthropic was imported (pytest imported it before this test)."""

    @pytest.mark.parametrize(
        ("make_client", "provider"),
        [
            (
                lambda url: anthropic.AnthropicVertex(
                    region="us-east5", project_id="p", access_token="t", base_url=url
                ),
                semconv.PROVIDER_GCP_VERTEX_AI,
            ),
            (
                lambda url: anthropic.AnthropicBedrock(
                    aws_region="us-east-1", aws_access_key="a", aws_secret_key="s", base_url=url
                ),
                semconv.PROVIDER_AWS_BEDROCK,
            ),
        ],
        ids=["vertex", "bedrock"],
    )
    def test_a_beta_call_makes_one_span(
        self,
        make_client: Callable[[str], Any],
        provider: str,
        spans: InMemorySpanExporter,
        fake_anthropic: FakeAnthropic,
        only_span: Any,
    ) -> None:
        client = make_client(fake_anthropic.base_url).with_options(max_retries=0)
        # The fake speaks Anthropic's own paths, not the clouds': the call fails, and its span
        # says so.
        with pytest.raises(anthropic.NotFoundError):
            client.beta.messages.create(model=MODEL, max_tokens=50, messages=QUESTION)

        span = only_span()
        assert span.attributes[semconv.PROVIDER_NAME] == provider
        assert span.status.status_code == StatusCode.ERROR
