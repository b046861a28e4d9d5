"""LiteLLM instrumentation: real litellm against the fake OpenAI server, one LLM span per call.

The OpenAI instrumentation is on too (as `instrument()` sets it up): LiteLLM calls the
`openai` client underneath, and the user must still see one LLM span, not two.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.collector.demo.fake_openai import FAIL_429, FAIL_MIDSTREAM, FakeOpenAI
from assay.instrumentation import pricing, semconv
from assay.instrumentation.providers import litellm as litellm_provider
from assay.instrumentation.providers.litellm import LiteLLMInstrumentor
from assay.instrumentation.providers.openai import OpenAIInstrumentor
from tests.lazy import lazy_import

# LiteLLM downloads its own price list at import unless told not to: tests stay offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm: Any = lazy_import("litellm", skip_without=True)

MODEL = "gpt-4o-mini"
QUESTION = [
    {"role": "system", "content": "You answer in one paragraph."},
    {"role": "user", "content": "Why is the sky blue?"},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
LITELLM_SCOPE = "assay.instrumentation.litellm"


def options(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "model": f"openai/{MODEL}",
        "messages": QUESTION,
        "api_base": fake.base_url,
        "api_key": "test-key",
        "num_retries": 0,
        **extra,
    }


def one_llm_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    """The single LLM span exported; fails if the openai client underneath added a second."""
    finished = exporter.get_finished_spans()
    assert [span.instrumentation_scope.name for span in finished] == [LITELLM_SCOPE]
    return finished[0]


def expected_cost(response: Any) -> float | None:
    usage = response.usage
    return pricing.cost_usd(
        response.model,
        usage.prompt_tokens,
        usage.completion_tokens,
        cached_input_tokens=usage.prompt_tokens_details.cached_tokens,
        provider=semconv.PROVIDER_OPENAI,
    )


@pytest.fixture(autouse=True)
def _both_instrumented(spans: InMemorySpanExporter) -> None:
    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    assert LiteLLMInstrumentor().is_instrumented_by_opentelemetry


def assert_chat_span(span: ReadableSpan, response: Any) -> None:
    attrs = span.attributes
    assert span.name == f"chat {MODEL}"
    assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_OPENAI
    assert attrs[semconv.REQUEST_MODEL] == MODEL
    assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[semconv.RESPONSE_MODEL] == response.model
    assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    cost = expected_cost(response)
    assert cost is not None and cost > 0
    assert attrs[semconv.COST_USD] == pytest.approx(cost)
    assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": QUESTION[0]["content"]}]},
        {"role": "user", "parts": [{"type": "text", "content": QUESTION[1]["content"]}]},
    ]
    assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)


class TestCompletion:
    def test_sync_call_is_one_llm_span(self, spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
        response = litellm.completion(**options(fake))
        assert_chat_span(one_llm_span(spans), response)

    def test_async_call_is_one_llm_span(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        response = asyncio.run(litellm.acompletion(**options(fake)))
        assert_chat_span(one_llm_span(spans), response)

    def test_tool_calls(self, spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
        response = litellm.completion(**options(fake, tools=[WEATHER_TOOL]))

        attrs = one_llm_span(spans).attributes
        tool_call = response.choices[0].message.tool_calls[0]
        assert json.loads(attrs[semconv.TOOL_DEFINITIONS])[0]["name"] == "get_weather"
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {
                "type": "tool_call",
                "id": tool_call.id,
                "name": "get_weather",
                "arguments": tool_call.function.arguments,
            }
        ]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)

    def test_provider_error_is_one_error_span(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        with pytest.raises(litellm.RateLimitError):
            litellm.completion(**{**options(fake), "model": f"openai/{FAIL_429}"})

        span = one_llm_span(spans)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "RateLimitError"


def openai_underneath(base_url: str) -> Any:
    """A LiteLLM provider that calls the real `openai` client, as proxies and frameworks do.

    (LiteLLM's own `openai/` route posts through the client's low-level `post`, below the
    methods Assay wraps; this route goes through `chat.completions.create`.) Defined when a
    test asks for it: subclassing `litellm.CustomLLM` imports litellm.
    """

    class OpenAIUnderneath(litellm.CustomLLM):  # type: ignore[misc]
        def __init__(self, base_url: str) -> None:
            super().__init__()
            self.base_url = base_url

        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            with OpenAI(base_url=self.base_url, api_key="test-key", max_retries=0) as client:
                response = client.chat.completions.create(model=model, messages=messages)
            return litellm.ModelResponse(**response.model_dump())

        async def acompletion(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            async with AsyncOpenAI(
                base_url=self.base_url, api_key="test-key", max_retries=0
            ) as client:
                response = await client.chat.completions.create(model=model, messages=messages)
            return litellm.ModelResponse(**response.model_dump())

    return OpenAIUnderneath(base_url)


class TestOpenAIClientUnderneath:
    @pytest.fixture(autouse=True)
    def _provider(self, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
        handler = openai_underneath(fake.base_url)
        monkeypatch.setattr(
            "litellm.custom_provider_map", [{"provider": "via-openai", "custom_handler": handler}]
        )

    def call(self) -> Any:
        return litellm.completion(model=f"via-openai/{MODEL}", messages=QUESTION)

    def test_sync_call_is_one_llm_span(self, spans: InMemorySpanExporter) -> None:
        response = self.call()
        span = one_llm_span(spans)
        assert span.attributes[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
        assert span.attributes[semconv.COST_USD] == pytest.approx(expected_cost(response))

    def test_async_call_is_one_llm_span(self, spans: InMemorySpanExporter) -> None:
        response = asyncio.run(litellm.acompletion(model=f"via-openai/{MODEL}", messages=QUESTION))
        span = one_llm_span(spans)
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens

    def test_without_litellm_instrumented_the_openai_client_reports_the_call(
        self, spans: InMemorySpanExporter, tracer_provider: TracerProvider
    ) -> None:
        # Proves the openai client underneath is instrumented and really called: the
        # LiteLLM span is what keeps the call to one LLM span above.
        LiteLLMInstrumentor().uninstrument()
        try:
            self.call()
        finally:
            LiteLLMInstrumentor().instrument(tracer_provider=tracer_provider, capture_content=True)
        names = [span.instrumentation_scope.name for span in spans.get_finished_spans()]
        assert names == ["assay.instrumentation.openai"]


class TestStream:
    def test_sync_stream_is_one_span_with_usage(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        stream = litellm.completion(
            **options(fake, stream=True, stream_options={"include_usage": True})
        )
        chunks = list(stream)

        span = one_llm_span(spans)
        attrs = span.attributes
        usage = chunks[-1].usage
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens
        assert attrs[semconv.COST_USD] == pytest.approx(
            pricing.cost_usd(
                MODEL, usage.prompt_tokens, usage.completion_tokens, cached_input_tokens=0
            )
        )
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {"type": "text", "content": text}
        ]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0

    def test_async_stream_is_one_span(self, spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
        async def consume() -> list[Any]:
            stream = await litellm.acompletion(
                **options(fake, stream=True, stream_options={"include_usage": True})
            )
            return [chunk async for chunk in stream]

        chunks = asyncio.run(consume())
        attrs = one_llm_span(spans).attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text

    def test_stream_without_usage_has_litellms_count_flagged_as_estimated(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        list(litellm.completion(**options(fake, stream=True)))
        attrs = one_llm_span(spans).attributes
        assert attrs[semconv.USAGE_REPORTED] is False
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0

    def test_streamed_tool_call_arguments(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        chunks = list(litellm.completion(**options(fake, stream=True, tools=[WEATHER_TOOL])))
        arguments = "".join(
            c.choices[0].delta.tool_calls[0].function.arguments or ""
            for c in chunks
            if c.choices and c.choices[0].delta.tool_calls
        )
        parts = json.loads(one_llm_span(spans).attributes[semconv.OUTPUT_MESSAGES])[0]["parts"]
        assert parts[0]["name"] == "get_weather"
        assert parts[0]["arguments"] == arguments
        assert json.loads(arguments)  # whole JSON, not a fragment

    def test_consumer_stopping_early_ends_the_span(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        stream = litellm.completion(**options(fake, stream=True))
        next(iter(stream))
        del stream  # abandoned: garbage collection ends the span
        gc.collect()
        attrs = one_llm_span(spans).attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True

    def test_stream_failing_midway_raises_to_the_user_and_records_the_error(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        received = []
        with pytest.raises(Exception) as raised:
            for chunk in litellm.completion(
                **{**options(fake, stream=True), "model": f"openai/{FAIL_MIDSTREAM}"}
            ):
                received.append(chunk)

        assert received  # some chunks arrived before the connection dropped
        span = one_llm_span(spans)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == type(raised.value).__qualname__
        text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
        assert json.loads(span.attributes[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {"type": "text", "content": text}
        ]


class TestNeverBreak:
    def test_failing_request_reader_leaves_the_call_alone(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        expected = litellm.completion(**options(fake)).choices[0].message.content
        spans.clear()

        def broken(*args: Any) -> Any:
            raise RuntimeError("assay bug")

        monkeypatch.setattr(litellm_provider, "_route", broken)
        response = litellm.completion(**options(fake))
        assert response.choices[0].message.content == expected
        assert spans.get_finished_spans() == ()  # Assay stepped aside for this call

    def test_failing_response_reader_returns_the_same_response(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: Any) -> Any:
            raise RuntimeError("assay bug")

        monkeypatch.setattr(litellm_provider.LiteLLMWrappers, "response_attributes", broken)
        response = litellm.completion(**options(fake))
        assert response.choices[0].message.content.startswith("You asked")
        assert one_llm_span(spans).end_time is not None


@pytest.mark.subprocess
def test_instrumenting_does_not_import_litellm_and_patches_it_on_import(fake: FakeOpenAI) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from assay.instrumentation import instrument

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrument(tracer_provider=provider)
        assert "litellm" not in sys.modules, "instrument() imported litellm"
        import litellm
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=[{{"role": "user", "content": "hi"}}],
            api_base={fake.base_url!r},
            api_key="k",
        )
        print(sorted(s.instrumentation_scope.name for s in exporter.get_finished_spans()))
        """
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == repr([LITELLM_SCOPE])


def test_content_capture_off_keeps_prompts_off_the_span(
    instrument_with: Any, span_exporter: InMemorySpanExporter, fake: FakeOpenAI
) -> None:
    instrument_with(capture_content=False)
    response = litellm.completion(**options(fake, tools=[WEATHER_TOOL]))
    list(litellm.completion(**options(fake, stream=True)))

    for span in span_exporter.get_finished_spans():
        assert span.instrumentation_scope.name == LITELLM_SCOPE
        for name in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS):
            assert name not in span.attributes, name
    assert span_exporter.get_finished_spans()[0].attributes[semconv.USAGE_INPUT_TOKENS] == (
        response.usage.prompt_tokens
    )
