"""Streams: chunks pass through untouched; the span ends exactly once, however the stream ends."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionChunk
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.collector.demo.fake_openai import FAIL_MIDSTREAM, FakeOpenAI
from assay.instrumentation import pricing, semconv
from assay.instrumentation._spans import Attributes, LLMCall, start_call
from assay.instrumentation._streams import AsyncStreamProxy, SyncStreamProxy
from assay.instrumentation.providers._chat_chunks import ChatChunkAccumulator

MODEL = "gpt-4o-mini"
DATED_MODEL = "gpt-4o-mini-2024-07-18"
MESSAGES = [{"role": "user", "content": "Tell me about streaming APIs."}]


def stream_chat(client: OpenAI, **options: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **options)


def async_client(fake: FakeOpenAI) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


class TestOpenAIStreams:
    def test_with_usage(self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any) -> None:
        chunks = list(stream_chat(client, stream_options={"include_usage": True}))

        span = only_span()
        attrs = span.attributes
        usage = chunks[-1].usage
        assert span.name == f"chat {MODEL}"
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.RESPONSE_ID] == chunks[0].id
        assert attrs[semconv.RESPONSE_MODEL] == DATED_MODEL
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert attrs[semconv.USAGE_REPORTED] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == 0
        cost = pricing.cost_usd(
            DATED_MODEL, usage.prompt_tokens, usage.completion_tokens, 0, provider="openai"
        )
        assert attrs[semconv.COST_USD] == pytest.approx(cost)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": "stop",
            }
        ]
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_without_usage_asked_the_app_sees_none_and_the_span_has_it(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        chunks = list(stream_chat(client))

        attrs = only_span().attributes
        assert all(chunk.usage is None and chunk.choices for chunk in chunks)
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)

    def test_time_to_first_chunk(self, spans: InMemorySpanExporter, only_span: Any) -> None:
        with (
            FakeOpenAI(latency=0.05, chunk_latency=0.01) as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
        ):
            for _ in stream_chat(client):
                pass

        span = only_span()
        first_chunk = span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK]
        duration = (span.end_time - span.start_time) / 1e9
        assert 0.05 <= first_chunk < duration

    def test_chunks_identical_to_uninstrumented(
        self,
        instrument_with: Callable[..., TracerProvider],
        client: OpenAI,
    ) -> None:
        def dumps() -> list[dict[str, Any]]:
            stream = stream_chat(client, stream_options={"include_usage": True})
            return [chunk.model_dump() for chunk in stream]

        bare = dumps()
        instrument_with()
        traced = dumps()

        assert traced == bare
        assert len(traced) > 10

    def test_the_proxy_is_still_a_stream(self, spans: InMemorySpanExporter, client: OpenAI) -> None:
        stream = stream_chat(client)

        assert isinstance(stream, openai.Stream)
        assert stream.response.status_code == 200
        assert isinstance(next(stream), ChatCompletionChunk)
        stream.close()

    def test_tool_call_deltas_are_joined(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        tool = {
            "type": "function",
            "function": {
                "name": "search_docs",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                    "required": ["query", "limit"],
                },
            },
        }
        chunks = list(stream_chat(client, tools=[tool]))

        first_delta = chunks[0].choices[0].delta.tool_calls[0]
        arguments = "".join(
            c.choices[0].delta.tool_calls[0].function.arguments
            for c in chunks
            if c.choices and c.choices[0].delta.tool_calls
        )
        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": first_delta.id,
                        "name": "search_docs",
                        "arguments": arguments,
                    }
                ],
                "finish_reason": "tool_calls",
            }
        ]
        assert json.loads(arguments) == {"query": "Tell me about streaming APIs.", "limit": 1}

    def test_break_then_close_ends_once_as_closed_early(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        stream = stream_chat(client, stream_options={"include_usage": True})
        for index, _ in enumerate(stream):
            if index == 3:
                break
        stream.close()
        stream.close()

        attrs = only_span().attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        assert attrs[semconv.USAGE_REPORTED] is False
        assert semconv.RESPONSE_FINISH_REASONS not in attrs
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"]

    def test_context_manager(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with stream_chat(client) as stream:
            chunks = list(stream)

        assert chunks
        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_context_manager_exit_before_the_end(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with stream_chat(client) as stream:
            next(stream)

        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True

    def test_garbage_collected_stream_ends_the_span(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        stream = stream_chat(client)
        next(stream)
        assert spans.get_finished_spans() == ()

        del stream
        gc.collect()

        assert only_span().attributes[semconv.STREAM_CLOSED_EARLY] is True

    def test_never_iterated_stream_ends_when_collected(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        stream_chat(client).close()
        stream_chat(client)  # dropped at once
        gc.collect()

        assert len(spans.get_finished_spans()) == 2

    def test_midstream_failure_raises_the_same_exception(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        client: OpenAI,
    ) -> None:
        def consume() -> tuple[int, BaseException]:
            received = 0
            stream = client.chat.completions.create(
                model=FAIL_MIDSTREAM, messages=MESSAGES, stream=True
            )
            try:
                for _ in stream:
                    received += 1
            except Exception as error:
                return received, error
            raise AssertionError("the stream did not fail")

        bare_received, bare_error = consume()
        instrument_with()
        received, error = consume()

        assert type(error) is type(bare_error)
        assert received == bare_received > 0
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == type(error).__qualname__
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes
        assert span.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0

    def test_stream_helper_is_one_span(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with client.chat.completions.stream(
            model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream:
            completion = stream.get_final_completion()

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens
        content = json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
        assert content == completion.choices[0].message.content


class TestAsyncOpenAIStreams:
    def test_with_and_without_usage(self, spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
        async def consume() -> list[list[Any]]:
            async with async_client(fake) as client:
                results = []
                for options in ({"include_usage": True}, None):
                    extra = {"stream_options": options} if options else {}
                    stream = await client.chat.completions.create(
                        model=MODEL, messages=MESSAGES, stream=True, **extra
                    )
                    results.append([chunk async for chunk in stream])
                return results

        with_usage, without_usage = asyncio.run(consume())

        first, second = spans.get_finished_spans()
        usage = with_usage[-1].usage
        assert first.attributes[semconv.USAGE_REPORTED] is True
        assert first.attributes[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
        assert first.attributes[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
        assert first.attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        # Asked for on the application's behalf: on the span, not in the chunks.
        assert second.attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert second.attributes[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
        assert second.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert without_usage and all(c.choices and c.usage is None for c in without_usage)

    def test_async_context_manager_and_close(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        async def consume() -> None:
            async with async_client(fake) as client:
                async with await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True
                ) as stream:
                    async for _ in stream:
                        break
                stream = await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True
                )
                await stream.__anext__()
                await stream.close()
                await stream.aclose()

        asyncio.run(consume())

        finished = spans.get_finished_spans()
        assert len(finished) == 2
        assert all(s.attributes[semconv.STREAM_CLOSED_EARLY] is True for s in finished)

    def test_midstream_failure(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        fake: FakeOpenAI,
    ) -> None:
        async def consume() -> BaseException:
            async with async_client(fake) as client:
                stream = await client.chat.completions.create(
                    model=FAIL_MIDSTREAM, messages=MESSAGES, stream=True
                )
                try:
                    async for _ in stream:
                        pass
                except Exception as error:
                    return error
            raise AssertionError("the stream did not fail")

        bare = asyncio.run(consume())
        instrument_with()
        traced = asyncio.run(consume())

        assert type(traced) is type(bare)
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == type(traced).__qualname__

    def test_chunks_identical_to_uninstrumented(
        self, instrument_with: Callable[..., TracerProvider], fake: FakeOpenAI
    ) -> None:
        async def dumps() -> list[dict[str, Any]]:
            async with async_client(fake) as client:
                stream = await client.chat.completions.create(
                    model=MODEL,
                    messages=MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                return [chunk.model_dump() async for chunk in stream]

        bare = asyncio.run(dumps())
        instrument_with()
        assert asyncio.run(dumps()) == bare


# --- the proxy itself, on plain iterators -------------------------------------------------------


class _Recorder:
    """A StreamAccumulator that keeps every chunk it saw."""

    def __init__(self) -> None:
        self.chunks: list[Any] = []

    def add(self, chunk: Any) -> None:
        self.chunks.append(chunk)

    def attributes(self, call: LLMCall) -> Attributes:
        return {semconv.RESPONSE_ID: f"{len(self.chunks)} chunks"}


class _Source:
    """A minimal client stream: iterator, context manager, close()."""

    def __init__(self, chunks: list[Any], error: BaseException | None = None) -> None:
        self._iterator: Iterator[Any] = iter(chunks)
        self.error = error
        self.closed = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            if self.error is not None:
                raise self.error from None
            raise

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed += 1


class _AsyncSource:
    def __init__(self, chunks: list[Any], error: BaseException | None = None) -> None:
        self._chunks = list(chunks)
        self.error = error
        self.closed = 0

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._chunks:
            return self._chunks.pop(0)
        if self.error is not None:
            raise self.error
        raise StopAsyncIteration

    async def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        await self.close()


class TestStreamProxy:
    @pytest.fixture
    def new_call(self, tracer_provider: TracerProvider) -> Callable[[], LLMCall]:
        tracer = tracer_provider.get_tracer("test")

        def _new_call() -> LLMCall:
            call = start_call(tracer, "chat", "openai", "m", {})
            assert call is not None
            return call

        return _new_call

    def test_passes_the_same_chunk_objects(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        chunks = [object(), object(), object()]
        recorder = _Recorder()

        received = list(SyncStreamProxy(_Source(chunks), new_call(), recorder))

        assert all(a is b for a, b in zip(received, chunks, strict=True))
        assert all(a is b for a, b in zip(recorder.chunks, chunks, strict=True))
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.RESPONSE_ID] == "3 chunks"

    def test_reraises_the_same_exception_object(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        failure = ConnectionResetError("peer went away")
        proxy = SyncStreamProxy(_Source([1, 2], failure), new_call(), _Recorder())

        with pytest.raises(ConnectionResetError) as raised:
            for _ in proxy:
                pass
        proxy.close()

        assert raised.value is failure
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.ERROR_TYPE] == "ConnectionResetError"
        assert span.status.status_code is StatusCode.ERROR

    @pytest.mark.parametrize(
        "finish",
        [
            lambda proxy: list(proxy),
            lambda proxy: proxy.close(),
            lambda proxy: proxy.__exit__(None, None, None),
            lambda proxy: [next(proxy), proxy.close(), proxy.close(), list(proxy)],
        ],
        ids=["exhausted", "close", "exit", "close-twice-then-read"],
    )
    def test_ends_exactly_once(
        self,
        new_call: Callable[[], LLMCall],
        span_exporter: InMemorySpanExporter,
        finish: Callable[[Any], object],
    ) -> None:
        source = _Source([1, 2, 3])
        proxy = SyncStreamProxy(source, new_call(), _Recorder())

        finish(proxy)
        del proxy
        gc.collect()

        assert len(span_exporter.get_finished_spans()) == 1

    def test_a_loop_left_early_can_be_resumed(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        proxy = SyncStreamProxy(_Source([1, 2, 3, 4, 5]), new_call(), _Recorder())

        first = next(proxy)
        for chunk in proxy:
            second = chunk
            break
        gc.collect()  # the first loop's iterator is gone: the span has not ended with it
        assert span_exporter.get_finished_spans() == ()
        rest = list(proxy)

        assert [first, second, *rest] == [1, 2, 3, 4, 5]
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.RESPONSE_ID] == "5 chunks"
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes

    def test_a_loop_keeps_an_unreferenced_proxy_alive(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        for _ in SyncStreamProxy(_Source([1, 2, 3]), new_call(), _Recorder()):
            gc.collect()
            assert span_exporter.get_finished_spans() == ()

        (span,) = span_exporter.get_finished_spans()
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes

    def test_an_abandoned_loop_ends_the_span_as_closed_early(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        for _ in SyncStreamProxy(_Source([1, 2, 3]), new_call(), _Recorder()):
            break

        (span,) = span_exporter.get_finished_spans()  # no cycle: no collector needed
        assert span.attributes[semconv.STREAM_CLOSED_EARLY] is True

    def test_close_reaches_the_client_stream(self, new_call: Callable[[], LLMCall]) -> None:
        source = _Source([1])
        with SyncStreamProxy(source, new_call(), _Recorder()) as proxy:
            assert isinstance(proxy, SyncStreamProxy)
        proxy.close()

        assert source.closed == 2

    def test_a_failing_accumulator_does_not_reach_the_consumer(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        class Broken(_Recorder):
            def add(self, chunk: Any) -> None:
                raise ValueError("assay bug")

            def attributes(self, call: LLMCall) -> Attributes:
                raise ValueError("assay bug")

        assert list(SyncStreamProxy(_Source([1, 2]), new_call(), Broken())) == [1, 2]
        assert len(span_exporter.get_finished_spans()) == 1

    def test_async_loop_left_early_can_be_resumed(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        async def consume() -> list[Any]:
            proxy = AsyncStreamProxy(_AsyncSource([1, 2, 3, 4]), new_call(), _Recorder())
            received = [await proxy.__anext__()]
            async for chunk in proxy:
                received.append(chunk)
                break
            received += [chunk async for chunk in proxy]
            return received

        assert asyncio.run(consume()) == [1, 2, 3, 4]
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.RESPONSE_ID] == "4 chunks"
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes

    def test_async(
        self, new_call: Callable[[], LLMCall], span_exporter: InMemorySpanExporter
    ) -> None:
        chunks = [object(), object()]
        failure = TimeoutError("slow")

        async def consume() -> tuple[list[Any], BaseException | None]:
            received = [
                c async for c in AsyncStreamProxy(_AsyncSource(chunks), new_call(), _Recorder())
            ]
            proxy = AsyncStreamProxy(_AsyncSource(chunks, failure), new_call(), _Recorder())
            try:
                async for _ in proxy:
                    pass
            except TimeoutError as error:
                return received, error
            return received, None

        received, error = asyncio.run(consume())

        assert all(a is b for a, b in zip(received, chunks, strict=True))
        assert error is failure
        ok, failed = span_exporter.get_finished_spans()
        assert ok.status.status_code is StatusCode.UNSET
        assert failed.attributes[semconv.ERROR_TYPE] == "TimeoutError"


def _chunk(choices: list[dict[str, Any]], **fields: Any) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": DATED_MODEL,
            "choices": choices,
            **fields,
        }
    )


def _delta_chunk(finish_reason: str | None = None, **delta: Any) -> ChatCompletionChunk:
    return _chunk([{"index": 0, "delta": delta, "finish_reason": finish_reason}])


class _Slotted:
    """A chunk, choice or delta without `__dict__` (and without the newer delta fields)."""

    __slots__ = ("choices", "content", "delta", "finish_reason", "id", "index", "model")
    __slots__ += ("role", "tool_calls", "usage")

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class TestChatChunkAccumulator:
    """The chat stream's answer, gathered chunk by chunk, from the client's chunk models."""

    CHUNKS = (
        _delta_chunk(role="assistant", content=""),
        _delta_chunk(content="Let me "),
        _delta_chunk(content="look."),
        _delta_chunk(
            tool_calls=[
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "find"}}
            ]
        ),
        _delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"order": '}}]),
        _delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": "42}"}}]),
        _delta_chunk(refusal="I can"),
        _delta_chunk(refusal="not."),
        _delta_chunk(finish_reason="tool_calls"),
        _chunk([], usage={"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}),
    )

    def gathered(
        self, chunks: Any, tracer_provider: TracerProvider, capture: bool = True
    ) -> Attributes:
        call = start_call(tracer_provider.get_tracer("test"), "chat", "openai", MODEL, {})
        assert call is not None
        accumulator = ChatChunkAccumulator(MODEL, capture)
        for chunk in chunks:
            accumulator.add(chunk)
        return accumulator.attributes(call)

    def test_text_tool_call_refusal_and_usage_of_the_last_chunk(
        self, tracer_provider: TracerProvider
    ) -> None:
        attributes = self.gathered(self.CHUNKS, tracer_provider)

        (message,) = json.loads(str(attributes[semconv.OUTPUT_MESSAGES]))
        assert message == {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Let me look."},
                {"type": "refusal", "content": "I cannot."},
                {"type": "tool_call", "id": "call_1", "name": "find", "arguments": '{"order": 42}'},
            ],
            "finish_reason": "tool_calls",
        }
        assert attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
        assert attributes[semconv.RESPONSE_MODEL] == DATED_MODEL
        assert attributes[semconv.USAGE_INPUT_TOKENS] == 12
        assert attributes[semconv.USAGE_OUTPUT_TOKENS] == 9
        assert attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED

    def test_objects_without_dict_or_newer_fields_give_the_same_answer(
        self, tracer_provider: TracerProvider
    ) -> None:
        def slotted(chunk: ChatCompletionChunk) -> _Slotted:
            choices = [
                _Slotted(
                    index=c.index,
                    finish_reason=c.finish_reason,
                    delta=_Slotted(
                        role=c.delta.role, content=c.delta.content, tool_calls=c.delta.tool_calls
                    ),
                )
                for c in chunk.choices
            ]
            return _Slotted(id=chunk.id, model=chunk.model, choices=choices, usage=chunk.usage)

        models = [c for c in self.CHUNKS if not (c.choices and c.choices[0].delta.refusal)]
        expected = self.gathered(models, tracer_provider)
        assert self.gathered([slotted(c) for c in models], tracer_provider) == expected

    def test_without_capture_only_counts_are_kept(self, tracer_provider: TracerProvider) -> None:
        attributes = self.gathered(self.CHUNKS, tracer_provider, capture=False)

        assert semconv.OUTPUT_MESSAGES not in attributes
        assert attributes[semconv.USAGE_OUTPUT_TOKENS] == 9
