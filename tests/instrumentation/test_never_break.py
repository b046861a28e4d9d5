"""Assay never breaks the application: every internal failure point, forced, changes nothing.

Each test runs the same calls of a real client against its fake server twice, bare and
instrumented, with one of Assay's own parts made to fail (fault injection into Assay,
never into the client or the server), and compares what the application sees: the
same return value, the same exception, the same stream chunks, also when the consumer
stops early or the stream breaks mid-way. The span still ends exactly once.

Clients are parametrized: another client joins by adding a `ClientCase` to `CLIENTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.collector.demo.fake_openai import FAIL_429 as OPENAI_429
from assay.collector.demo.fake_openai import FAIL_MIDSTREAM as OPENAI_MIDSTREAM
from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import _spans, _streams, pricing, semconv, uninstrument
from assay.instrumentation.providers import _anthropic_blocks, _call, _chat_chunks
from assay.instrumentation.providers import anthropic as anthropic_provider
from assay.instrumentation.providers import openai as openai_provider
from assay.instrumentation.providers._call import CallWrappers
from tests.fakes.fake_anthropic import FAIL_529 as ANTHROPIC_529
from tests.fakes.fake_anthropic import FAIL_MIDSTREAM as ANTHROPIC_MIDSTREAM
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.instrumentation.breaking import break_accumulator, broken
from tests.instrumentation.conftest import FIXED_NOW

# Malformed answers make pydantic warn when the client's models are dumped: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

Mutate = Callable[[dict[str, Any]], Any]
# What the application sees of a call: ("ok", value) or ("raised", type, message).
Outcome = tuple[Any, ...]
# A stream opener: (the stream to iterate, how the application closes it).
Opened = tuple[Any, Callable[[], Any]]


# --- the clients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCase:
    name: str
    start: Callable[[contextlib.ExitStack, Mutate | None], Any]  # fake server → client
    start_async: Callable[[contextlib.ExitStack, Mutate | None], Any]
    call: Callable[[Any], Any]
    call_async: Callable[[Any], Any]
    failing_call: Callable[[Any], Any]  # the provider answers with an error status
    streams: dict[str, Callable[[Any], Opened]]
    stream_async: Callable[[Any], Any]  # an async iterator of chunks
    failing_stream: Callable[[Any], Opened]  # breaks after a few chunks
    wrappers: type[CallWrappers]  # the provider's lifecycle hooks, for fault injection
    # What reads its requests and responses: its hooks and the shared format readers
    internals: tuple[tuple[Any, str], ...]


def _start_openai(stack: contextlib.ExitStack, mutate: Mutate | None) -> Any:
    fake = stack.enter_context(FakeOpenAI(clock=lambda: FIXED_NOW, mutate=mutate))
    return stack.enter_context(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0))


def _start_openai_async(stack: contextlib.ExitStack, mutate: Mutate | None) -> Any:
    fake = stack.enter_context(FakeOpenAI(clock=lambda: FIXED_NOW, mutate=mutate))
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)


OPENAI_ASK: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Weather in Oslo, and why is the sky blue?"}],
}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _opened(stream: Any) -> Opened:
    return stream, stream.close


def _helper(manager: Any) -> Opened:
    stream = manager.__enter__()
    return stream, lambda: manager.__exit__(None, None, None)


OPENAI = ClientCase(
    name="openai",
    start=_start_openai,
    start_async=_start_openai_async,
    call=lambda c: c.chat.completions.create(**OPENAI_ASK, tools=OPENAI_TOOLS),
    call_async=lambda c: c.chat.completions.create(**OPENAI_ASK),
    failing_call=lambda c: c.chat.completions.create(**{**OPENAI_ASK, "model": OPENAI_429}),
    streams={
        "chat": lambda c: _opened(
            c.chat.completions.create(
                **OPENAI_ASK, stream=True, stream_options={"include_usage": True}
            )
        ),
        "chat-tools": lambda c: _opened(
            c.chat.completions.create(**OPENAI_ASK, tools=OPENAI_TOOLS, stream=True)
        ),
        "responses": lambda c: _opened(
            c.responses.create(model="gpt-4.1-mini", input="Why is the sky blue?", stream=True)
        ),
        "completions": lambda c: _opened(
            c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True)
        ),
        "responses-helper": lambda c: _helper(
            c.responses.stream(model="gpt-4.1-mini", input="Why is the sky blue?")
        ),
    },
    stream_async=lambda c: c.chat.completions.create(**OPENAI_ASK, stream=True),
    failing_stream=lambda c: _opened(
        c.chat.completions.create(**{**OPENAI_ASK, "model": OPENAI_MIDSTREAM}, stream=True)
    ),
    wrappers=openai_provider.OpenAIWrappers,
    internals=(
        (openai_provider.OpenAIWrappers, "describe"),
        (openai_provider.OpenAIWrappers, "response_attributes"),
        (_chat_chunks, "input_messages"),
        (_chat_chunks, "output_messages"),
        (_chat_chunks, "add_usage"),
        (_chat_chunks, "request_content"),
        (_call, "to_json"),
        (_chat_chunks, "to_json"),
    ),
)


def _start_anthropic(stack: contextlib.ExitStack, mutate: Mutate | None) -> Any:
    fake = stack.enter_context(FakeAnthropic(mutate=mutate))
    return stack.enter_context(
        anthropic.Anthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    )


def _start_anthropic_async(stack: contextlib.ExitStack, mutate: Mutate | None) -> Any:
    fake = stack.enter_context(FakeAnthropic(mutate=mutate))
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)


ANTHROPIC_ASK: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 400,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Weather in Oslo, and why is the sky blue?"}],
}
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]

ANTHROPIC = ClientCase(
    name="anthropic",
    start=_start_anthropic,
    start_async=_start_anthropic_async,
    call=lambda c: c.messages.create(**ANTHROPIC_ASK, tools=ANTHROPIC_TOOLS),
    call_async=lambda c: c.messages.create(**ANTHROPIC_ASK),
    failing_call=lambda c: c.messages.create(**{**ANTHROPIC_ASK, "model": ANTHROPIC_529}),
    streams={
        "create": lambda c: _opened(c.messages.create(**ANTHROPIC_ASK, stream=True)),
        "create-tools": lambda c: _opened(
            c.messages.create(**ANTHROPIC_ASK, tools=ANTHROPIC_TOOLS, stream=True)
        ),
        "helper": lambda c: _helper(c.messages.stream(**ANTHROPIC_ASK)),
        "helper-text": lambda c: _text_stream(_helper(c.messages.stream(**ANTHROPIC_ASK))),
    },
    stream_async=lambda c: c.messages.create(**ANTHROPIC_ASK, stream=True),
    failing_stream=lambda c: _opened(
        c.messages.create(**{**ANTHROPIC_ASK, "model": ANTHROPIC_MIDSTREAM}, stream=True)
    ),
    wrappers=anthropic_provider.AnthropicWrappers,
    internals=(
        (anthropic_provider.AnthropicWrappers, "describe"),
        (anthropic_provider.AnthropicWrappers, "response_attributes"),
        (_anthropic_blocks, "request_attributes"),
        (_anthropic_blocks, "input_messages"),
        (_anthropic_blocks, "parts"),
        (_anthropic_blocks, "tool_definitions"),
        (_anthropic_blocks, "add_usage"),
        (_call, "to_json"),
        (_anthropic_blocks, "to_json"),
    ),
)


def _text_stream(opened: Opened) -> Opened:
    stream, close = opened
    return stream.text_stream, close


CLIENTS = [OPENAI, ANTHROPIC]
STREAMS = [(case, kind) for case in CLIENTS for kind in case.streams]
INTERNALS = [(case, internal) for case in CLIENTS for internal in case.internals]


def _ids(value: Any) -> str:
    if isinstance(value, ClientCase):
        return value.name
    if isinstance(value, tuple):  # (owner, name)
        owner, name = value
        return f"{getattr(owner, '__name__', owner).rsplit('.', 1)[-1]}.{name}"
    return str(value)


# --- what the application sees -----------------------------------------------------------------


def dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(warnings=False)
    return value


def outcome(run: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", dump(run()))
    except Exception as error:
        return ("raised", type(error), str(error))


def consume(opened: Opened, limit: int | None = None) -> Outcome:
    """Read a stream as an application does: chunk by chunk, then close it."""
    stream, close = opened
    chunks = []
    try:
        for chunk in stream:
            chunks.append(dump(chunk))
            if limit is not None and len(chunks) == limit:
                break
    except Exception as error:
        return ("raised", type(error), str(error), chunks)
    finally:
        close()
    return ("ok", chunks)


def run_case(case: ClientCase, mutate: Mutate | None, action: Callable[[Any], Outcome]) -> Outcome:
    with contextlib.ExitStack() as stack:
        return action(case.start(stack, mutate))


def plain(case: ClientCase) -> Callable[[Any], Outcome]:
    return lambda client: outcome(lambda: case.call(client))


def streamed(case: ClientCase, kind: str, limit: int | None = None) -> Callable[[Any], Outcome]:
    return lambda client: consume(case.streams[kind](client), limit)


@pytest.fixture
def bare_then_traced(
    instrument_with: Callable[..., TracerProvider],
) -> Callable[..., tuple[Outcome, Outcome]]:
    """Run `action` bare, then instrumented (after `prepare`, the fault injection)."""

    def _run(
        case: ClientCase,
        action: Callable[[Any], Outcome],
        prepare: Callable[[], None] = lambda: None,
        mutate: Mutate | None = None,
    ) -> tuple[Outcome, Outcome]:
        uninstrument()
        bare = run_case(case, mutate, action)
        prepare()
        instrument_with(capture_content=True)
        return bare, run_case(case, mutate, action)

    return _run


@pytest.fixture(autouse=True)
def _fresh_failure_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spans, "_reported_kinds", set())


# --- attribute extraction ----------------------------------------------------------------------


class TestAttributeExtractionFailing:
    @pytest.mark.parametrize(("case", "internal"), INTERNALS, ids=_ids)
    def test_plain_call_returns_the_same_value(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
        internal: tuple[Any, str],
    ) -> None:
        bare, traced = bare_then_traced(
            case, plain(case), lambda: monkeypatch.setattr(*internal, broken)
        )

        assert bare[0] == "ok"
        assert traced == bare
        assert len(span_exporter.get_finished_spans()) <= 1

    @pytest.mark.parametrize(("case", "internal"), INTERNALS, ids=_ids)
    def test_streams_yield_the_same_chunks(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
        internal: tuple[Any, str],
    ) -> None:
        kind = next(iter(case.streams))
        bare, traced = bare_then_traced(
            case, streamed(case, kind), lambda: monkeypatch.setattr(*internal, broken)
        )

        assert bare[0] == "ok" and len(bare[1]) > 5
        assert traced == bare

    @pytest.mark.parametrize(("case", "kind"), STREAMS, ids=_ids)
    @pytest.mark.parametrize("method", ["add", "attributes"])
    def test_a_failing_stream_accumulator(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
        kind: str,
        method: str,
    ) -> None:
        bare, traced = bare_then_traced(
            case,
            streamed(case, kind),
            lambda: break_accumulator(monkeypatch, case.wrappers, method),
        )

        assert bare[0] == "ok"
        assert traced == bare
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.UNSET

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    @pytest.mark.parametrize(
        "target",
        [
            (_spans, "current_attributes"),  # the ambient context(...) lookup
            (_spans.LLMCall, "add_usage"),
            (_spans.LLMCall, "attach"),  # making the span current
        ],
        ids=["context", "usage", "attach"],
    )
    def test_shared_span_builder_failing(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
        target: tuple[Any, str],
    ) -> None:
        owner, name = target
        bare, traced = bare_then_traced(
            case, plain(case), lambda: monkeypatch.setattr(owner, name, broken)
        )
        assert traced == bare

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_the_tracer_failing_to_start_a_span(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
    ) -> None:
        bare, traced = bare_then_traced(
            case, plain(case), lambda: monkeypatch.setattr(_spans.LLMCall, "__init__", broken)
        )

        assert traced == bare
        assert span_exporter.get_finished_spans() == ()

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_async_paths(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
    ) -> None:
        async def run() -> tuple[Outcome, Outcome]:
            with contextlib.ExitStack() as stack:
                client = case.start_async(stack, None)
                try:
                    response = dump(await case.call_async(client))
                    stream = await case.stream_async(client)
                    chunks = [dump(chunk) async for chunk in stream]
                finally:
                    await client.close()
                return ("ok", response), ("ok", chunks)

        bare = asyncio.run(run())
        for internal in case.internals:
            if internal[1] != "describe":  # the span must still start to reach the others
                monkeypatch.setattr(*internal, broken)
        break_accumulator(monkeypatch, case.wrappers, "add")
        instrument_with(capture_content=True)
        traced = asyncio.run(run())

        assert traced == bare
        assert len(bare[1][1]) > 5


# --- cost lookup -------------------------------------------------------------------------------


class TestCostLookupFailing:
    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    # Every step of pricing a call: the entry point, the table in force, the table's price.
    @pytest.mark.parametrize("function", ["cost_usd", "current", "PriceTable.lookup"])
    def test_same_value_tokens_kept_cost_left_out(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
        function: str,
    ) -> None:
        def prepare() -> None:
            pricing.reload()
            owner, _, name = function.rpartition(".")
            monkeypatch.setattr(getattr(pricing, owner) if owner else pricing, name, broken)

        bare, traced = bare_then_traced(case, plain(case), prepare)
        pricing.reload()

        assert traced == bare
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.USAGE_INPUT_TOKENS] > 0
        assert semconv.COST_USD not in span.attributes

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_a_broken_prices_file(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any,
        case: ClientCase,
    ) -> None:
        prices = tmp_path / "prices.json"
        prices.write_text('{"models": {"gpt-4o-mini": {"input": "free"}}')  # and cut short

        def prepare() -> None:
            monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(prices))
            pricing.reload()

        bare, traced = bare_then_traced(case, plain(case), prepare)
        pricing.reload()

        assert traced == bare
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.COST_USD] > 0  # the built-in table is used


# --- the exporter ------------------------------------------------------------------------------


class _RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.calls += 1
        raise ConnectionError("collector unreachable")

    def shutdown(self) -> None:
        pass


class _RaisingProcessor(SpanProcessor):
    def __init__(self, on: str) -> None:
        self.on = on

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.on == "start":
            raise RuntimeError("processor bug on start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.on == "end":
            raise RuntimeError("processor bug on end")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestExporterFailing:
    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_an_exporter_that_raises(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        tracer_provider: TracerProvider,
        case: ClientCase,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        exporter = _RaisingExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))

        with caplog.at_level(logging.ERROR):
            bare, traced = bare_then_traced(case, plain(case), mutate=None)
            stream_bare, stream_traced = bare_then_traced(
                case, streamed(case, next(iter(case.streams)))
            )

        assert traced == bare
        assert stream_traced == stream_bare
        assert exporter.calls == 2

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_a_collector_that_is_down(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        tracer_provider: TracerProvider,
        case: ClientCase,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{_closed_port()}/v1/traces", timeout=1
        )
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))

        bare, traced = bare_then_traced(case, plain(case))
        stream_bare, stream_traced = bare_then_traced(
            case, streamed(case, next(iter(case.streams)))
        )

        assert traced == bare
        assert stream_traced == stream_bare

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    @pytest.mark.parametrize("on", ["start", "end"])
    def test_a_span_processor_that_raises(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        tracer_provider: TracerProvider,
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
        on: str,
    ) -> None:
        tracer_provider.add_span_processor(_RaisingProcessor(on))

        bare, traced = bare_then_traced(case, plain(case))
        stream_bare, stream_traced = bare_then_traced(
            case, streamed(case, next(iter(case.streams)))
        )

        assert traced == bare
        assert stream_traced == stream_bare


# --- malformed provider responses --------------------------------------------------------------


def _walk(value: Any, key: str, replace: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: (replace(v) if k == key else _walk(v, key, replace)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, key, replace) for v in value]
    return value


def _drop(key: str) -> Mutate:
    def mutate(body: dict[str, Any]) -> Any:
        def strip(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k != key}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value

        return strip(body)

    return mutate


def _replace(key: str, replace: Callable[[Any], Any]) -> Mutate:
    return lambda body: _walk(body, key, replace)


def _numbers_as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numbers_as_strings(v) for k, v in value.items()}
    return str(value) if isinstance(value, int) else value


MALFORMED: dict[str, Mutate] = {
    "no-usage": _drop("usage"),
    "usage-not-an-object": _replace("usage", lambda _: "lots"),
    "usage-numbers-as-strings": _replace("usage", _numbers_as_strings),
    "usage-negative": _replace("usage", lambda u: {k: -5 for k in u} if isinstance(u, dict) else u),
    "model-a-number": _replace("model", lambda _: 42),
    "no-id": _drop("id"),
    "finish-reason-a-number": _replace("finish_reason", lambda _: 7),
    "stop-reason-a-list": _replace("stop_reason", lambda _: ["end_turn"]),
    "content-of-unknown-blocks": _replace("content", lambda _: [{"type": "hologram", "x": 1}]),
    "choices-not-a-list": _replace("choices", lambda _: {"0": "choice"}),
    "tool-calls-a-string": _replace("tool_calls", lambda _: "get_weather()"),
    "tool-input-a-string": _replace("input", lambda _: "not json"),
    "output-of-unknown-items": _replace("output", lambda _: [{"type": "hologram"}]),
    "delta-not-an-object": _replace("delta", lambda _: None),
}


class TestMalformedResponses:
    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    @pytest.mark.parametrize("malformation", list(MALFORMED))
    def test_plain_call(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
        malformation: str,
    ) -> None:
        bare, traced = bare_then_traced(case, plain(case), mutate=MALFORMED[malformation])

        assert traced == bare
        (span,) = span_exporter.get_finished_spans()  # one span, ended once
        if bare[0] == "ok" and malformation.startswith(("no-usage", "usage-not")):
            assert span.attributes[semconv.USAGE_REPORTED] is False
            assert semconv.COST_USD not in span.attributes

    @pytest.mark.parametrize(("case", "kind"), STREAMS, ids=_ids)
    @pytest.mark.parametrize("malformation", list(MALFORMED))
    def test_streams(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
        kind: str,
        malformation: str,
    ) -> None:
        bare, traced = bare_then_traced(case, streamed(case, kind), mutate=MALFORMED[malformation])

        if malformation == "usage-not-an-object" and case.name == "openai":
            # Assay asks for usage on the application's behalf, and the API then sends
            # `usage: null` on every chunk (absent when not asked: None to the client
            # either way). A server that garbles every chunk's usage shows the garble.
            bare, traced = _without_usage(bare), _without_usage(traced)
        assert traced == bare
        assert len(span_exporter.get_finished_spans()) == 1


def _without_usage(outcome: Outcome) -> Outcome:
    kind, chunks = outcome
    if not isinstance(chunks, list):
        return outcome
    return kind, [{k: v for k, v in chunk.items() if k != "usage"} for chunk in chunks]


# --- streams stopped early or broken mid-way ---------------------------------------------------


class TestStreamsEndingEarly:
    @pytest.mark.parametrize(("case", "kind"), STREAMS, ids=_ids)
    def test_consumer_stops_early(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
        kind: str,
    ) -> None:
        bare, traced = bare_then_traced(case, streamed(case, kind, limit=3))

        assert traced == bare and len(bare[1]) == 3
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.STREAM_CLOSED_EARLY] is True
        assert span.status.status_code is StatusCode.UNSET

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_stream_breaks_mid_way(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
    ) -> None:
        bare, traced = bare_then_traced(case, lambda c: consume(case.failing_stream(c)))

        assert bare[0] == "raised" and len(bare[3]) > 0
        assert traced == bare  # same exception type, message and chunks before it
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == bare[1].__qualname__
        assert semconv.STREAM_CLOSED_EARLY not in span.attributes

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_stream_breaks_mid_way_with_a_failing_accumulator(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        case: ClientCase,
    ) -> None:
        def prepare() -> None:
            break_accumulator(monkeypatch, case.wrappers, "add", "attributes")

        bare, traced = bare_then_traced(case, lambda c: consume(case.failing_stream(c)), prepare)

        assert traced == bare
        (span,) = span_exporter.get_finished_spans()
        assert span.attributes[semconv.ERROR_TYPE] == bare[1].__qualname__

    @pytest.mark.parametrize("case", CLIENTS, ids=_ids)
    def test_provider_error_is_the_same_exception(
        self,
        bare_then_traced: Callable[..., tuple[Outcome, Outcome]],
        span_exporter: InMemorySpanExporter,
        case: ClientCase,
    ) -> None:
        bare, traced = bare_then_traced(case, lambda c: outcome(lambda: case.failing_call(c)))

        assert bare[0] == "raised"
        assert traced == bare
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR


# The async helper builds its request coroutine up front; misused, it is never awaited.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_misusing_the_async_stream_helper_fails_as_without_assay(
    instrument_with: Callable[..., TracerProvider], span_exporter: InMemorySpanExporter
) -> None:
    def misuse() -> Outcome:
        with contextlib.ExitStack() as stack:
            client = ANTHROPIC.start_async(stack, None)

            def enter() -> Any:
                with client.messages.stream(**ANTHROPIC_ASK):  # async manager, plain `with`
                    pass

            return outcome(enter)

    bare = misuse()
    instrument_with()
    assert misuse() == bare and bare[0] == "raised"
    assert span_exporter.get_finished_spans() == ()


def test_every_stream_proxy_is_a_stream_proxy() -> None:
    """The fault injection above reaches the proxies the providers return."""
    assert issubclass(_streams.SyncStreamProxy, _streams._StreamProxyBase)
    assert issubclass(_streams.AsyncStreamProxy, _streams._StreamProxyBase)
