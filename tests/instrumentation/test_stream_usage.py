"""Streams report usage whenever the provider can, and the application sees what it asked for.

An openai chat or completions stream the application sent without
`stream_options.include_usage` is sent with it; the usage-only chunk this adds is read for
the span and never reaches the application. A server that refuses the option still
answers the call (the application's own request is sent) and is not asked again. Where
no usage can be had, the span carries an estimate flagged `assay.usage.source=estimated`;
every span says where its tokens came from.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FAIL_500, FakeOpenAI
from assay.collector.demo.fake_server import Reply, Request
from assay.instrumentation import pricing, semconv
from assay.instrumentation.providers import _token_estimate as estimate
from tests.fakes.fake_anthropic import FakeAnthropic

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You answer in one paragraph."},
    {"role": "user", "content": "Tell me about streaming APIs."},
]
TOKENS = (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS, semconv.COST_USD)


class RefusingStreamOptions(FakeOpenAI):
    """An OpenAI-compatible server that does not know `stream_options` (as Azure OpenAI's
    API versions before 2024-09-01 answer it)."""

    def reply(self, request: Request) -> Reply:
        if isinstance(request.body, dict) and "stream_options" in request.body:
            error = {
                "message": "Unrecognized request argument supplied: stream_options",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return Reply(400, {"error": error})
        return super().reply(request)


class IgnoringStreamOptions(FakeOpenAI):
    """A server that accepts `stream_options` and sends no usage anyway."""

    def chat_chunks(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return super().chat_chunks({k: v for k, v in request.items() if k != "stream_options"})


def stream_chat(client: OpenAI, **options: Any) -> list[Any]:
    return list(
        client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **options)
    )


def bare_chunks(fake: FakeOpenAI, **options: Any) -> list[dict[str, Any]]:
    """The chunks an uninstrumented client gets for the same request (the spans fixture is
    not used: nothing is instrumented yet)."""
    with OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
        return [chunk.model_dump() for chunk in stream_chat(client, **options)]


def usage_of(fake: FakeOpenAI) -> dict[str, Any]:
    """The usage the fake reports for MESSAGES, read from a stream that asked for it."""
    with OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
        chunks = stream_chat(client, stream_options={"include_usage": True})
    return chunks[-1].usage.model_dump()


class TestOpenAIAsksForUsage:
    def test_the_app_sees_its_stream_and_the_span_has_the_reported_usage(
        self, fake: FakeOpenAI, instrument_with: Any, span_exporter: InMemorySpanExporter
    ) -> None:
        bare = bare_chunks(fake)
        reported = usage_of(fake)
        instrument_with(capture_content=True)
        with OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            traced = [chunk.model_dump() for chunk in stream_chat(client)]

        # The same chunks as without Assay: no usage chunk, no usage on any chunk.
        assert [{**c, "id": "", "created": 0} for c in traced] == [
            {**c, "id": "", "created": 0} for c in bare
        ]
        assert all(chunk["usage"] is None and chunk["choices"] for chunk in traced)
        # The server was asked for usage, and the span has it.
        assert fake.requests[-1]["stream_options"] == {"include_usage": True}
        (span,) = span_exporter.get_finished_spans()
        attrs = span.attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert attrs[semconv.USAGE_REPORTED] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == reported["prompt_tokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == reported["completion_tokens"]
        assert attrs[semconv.COST_USD] == pytest.approx(
            pricing.cost_usd(
                attrs[semconv.RESPONSE_MODEL],
                reported["prompt_tokens"],
                reported["completion_tokens"],
                0,
                provider="openai",
            )
        )

    def test_other_stream_options_of_the_app_are_kept(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        chunks = stream_chat(client, stream_options={"include_obfuscation": False})

        assert fake.requests[-1]["stream_options"] == {
            "include_obfuscation": False,
            "include_usage": True,
        }
        assert all(chunk.choices for chunk in chunks)
        assert only_span().attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED

    def test_an_app_that_asked_gets_its_usage_chunk(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        chunks = stream_chat(client, stream_options={"include_usage": True})

        assert not chunks[-1].choices and chunks[-1].usage is not None
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens

    def test_legacy_completions_stream(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        chunks = list(
            client.completions.create(
                model="gpt-3.5-turbo-instruct", prompt="Say this is a test", stream=True
            )
        )

        assert fake.requests[-1]["stream_options"] == {"include_usage": True}
        assert all(chunk.choices and chunk.usage is None for chunk in chunks)
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] > 0

    def test_async(self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any) -> None:
        async def consume() -> list[Any]:
            async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
                stream = await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True
                )
                return [chunk async for chunk in stream]

        chunks = asyncio.run(consume())

        assert all(chunk.choices and chunk.usage is None for chunk in chunks)
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0

    def test_the_stream_helper_gets_no_usage_it_did_not_ask_for(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
            for _ in stream:
                pass
            completion = stream.get_final_completion()

        assert completion.usage is None  # as without Assay
        assert only_span().attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED

    def test_with_raw_response_streams_are_sent_as_asked(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        chunks = list(raw.parse())

        # The application reads this body itself: Assay could not hide a usage chunk in it,
        # so the tokens of what parse() streamed are estimated.
        assert "stream_options" not in fake.requests[-1]
        assert all(chunk.choices for chunk in chunks)
        assert only_span().attributes[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED


class TestServerRefusesTheOption:
    def test_the_call_succeeds_and_the_server_is_not_asked_again(
        self, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
    ) -> None:
        with (
            RefusingStreamOptions() as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
            caplog.at_level("INFO", "assay.instrumentation"),
        ):
            first = stream_chat(client)
            second = stream_chat(client)
            requests = list(fake.requests)

        # Asked once, refused, sent as the application asked; the second call is not asked.
        assert ["stream_options" in body for body in requests] == [True, False, False]
        assert first and second and all(chunk.choices for chunk in first + second)
        assert sum("refused stream_options" in r.getMessage() for r in caplog.records) == 1
        one, two = spans.get_finished_spans()
        for span, chunks in ((one, first), (two, second)):
            attrs = span.attributes
            assert span.status.is_ok
            assert semconv.ERROR_TYPE not in attrs
            # No usage came: estimated from the text sent and received, and flagged so.
            assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
            assert attrs[semconv.USAGE_REPORTED] is False
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            assert attrs[semconv.USAGE_OUTPUT_TOKENS] == estimate.tokens_of(len(text))
            assert attrs[semconv.USAGE_INPUT_TOKENS] == estimate.input_tokens(MESSAGES)
            assert attrs[semconv.COST_USD] > 0

    def test_another_error_is_the_apps_and_sent_once(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        import openai

        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=FAIL_500, messages=MESSAGES, stream=True)

        assert len(fake.requests) == 1
        attrs = only_span().attributes
        assert attrs[semconv.ERROR_TYPE] == "InternalServerError"
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_NONE

    def test_a_server_that_ignores_it_gets_an_estimate(
        self, spans: InMemorySpanExporter, only_span: Any
    ) -> None:
        with (
            IgnoringStreamOptions() as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
        ):
            chunks = stream_chat(client)

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == estimate.tokens_of(len(text))


class TestEveryCallSaysWhereItsTokensCameFrom:
    def test_plain_stream_failed_and_embeddings(
        self, spans: InMemorySpanExporter, client: OpenAI
    ) -> None:
        import openai

        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        client.embeddings.create(model="text-embedding-3-small", input="hello")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=FAIL_500, messages=MESSAGES)

        sources = [s.attributes[semconv.USAGE_SOURCE] for s in spans.get_finished_spans()]
        assert sources == ["reported", "reported", "none"]


class TestEstimate:
    def test_input_counts_text_not_images(self) -> None:
        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4000}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "abcdefgh"}, image]}]
        assert estimate.input_tokens(messages) == 2 + estimate.TOKENS_PER_MESSAGE

    def test_prompts_and_token_ids(self) -> None:
        assert estimate.input_tokens("abcde") == 2
        assert estimate.input_tokens(["abcd", "abcd"]) == 2
        assert estimate.input_tokens([1, 2, 3]) == 3
        assert estimate.input_tokens([]) is None and estimate.input_tokens(None) is None


# --- LiteLLM -----------------------------------------------------------------------------------

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class TestLiteLLMStreams:
    @pytest.fixture(autouse=True)
    def _litellm(self) -> Any:
        return pytest.importorskip("litellm")

    def test_usage_handed_over_on_the_final_chunk_is_kept(
        self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic
    ) -> None:
        import litellm

        chunks = list(
            litellm.completion(
                model="anthropic/claude-sonnet-4-5",
                messages=MESSAGES[1:],
                max_tokens=200,
                api_base=fake_anthropic.base_url,
                api_key="k",
                stream=True,
            )
        )

        # The application asked for no usage: LiteLLM keeps it in the last chunk's hidden params.
        handed_over = chunks[-1]._hidden_params["usage"]
        assert type(handed_over).__name__ == "Usage" and handed_over.completion_tokens > 0
        (span,) = [
            s
            for s in spans.get_finished_spans()
            if s.instrumentation_scope.name == "assay.instrumentation.litellm"
        ]
        attrs = span.attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        assert attrs[semconv.USAGE_INPUT_TOKENS] == handed_over.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == handed_over.completion_tokens
        assert attrs[semconv.COST_USD] > 0

    def test_a_provider_that_sent_none_gets_litellms_count_as_an_estimate(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI
    ) -> None:
        import litellm

        chunks = list(
            litellm.completion(
                model=f"openai/{MODEL}",
                messages=MESSAGES,
                api_base=fake.base_url,
                api_key="k",
                stream=True,
            )
        )

        # No usage came (the fake was not asked): LiteLLM counted the tokens itself.
        assert "stream_options" not in fake.requests[-1]
        counted = chunks[-1]._hidden_params["usage"]
        (span,) = spans.get_finished_spans()
        attrs = span.attributes
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
        assert attrs[semconv.USAGE_REPORTED] is False
        assert attrs[semconv.USAGE_INPUT_TOKENS] == counted.prompt_tokens > 0
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == counted.completion_tokens > 0


def test_output_messages_are_unchanged_by_the_usage_chunk(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    chunks = stream_chat(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert json.loads(only_span().attributes[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": text}
    ]


class TestLiteLLMReasoning:
    """LiteLLM hands a model's thinking over as `reasoning_content`: it is the reply's first
    part, streamed or not."""

    def call(self, fake_anthropic: FakeAnthropic, stream: bool) -> Any:
        litellm = pytest.importorskip("litellm")
        return litellm.completion(
            model="anthropic/claude-sonnet-4-5",
            messages=MESSAGES[1:],
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            api_base=fake_anthropic.base_url,
            api_key="k",
            stream=stream,
        )

    @staticmethod
    def reply_parts(spans: InMemorySpanExporter) -> list[dict[str, Any]]:
        (span,) = [
            s
            for s in spans.get_finished_spans()
            if s.instrumentation_scope.name == "assay.instrumentation.litellm"
        ]
        (message,) = json.loads(span.attributes[semconv.OUTPUT_MESSAGES])
        return list(message["parts"])

    def test_streamed(self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic) -> None:
        chunks = list(self.call(fake_anthropic, stream=True))

        deltas = [c.choices[0].delta for c in chunks if c.choices]
        thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        text = "".join(d.content or "" for d in deltas)
        assert thinking and text
        assert self.reply_parts(spans) == [
            {"type": "reasoning", "content": thinking},
            {"type": "text", "content": text},
        ]

    def test_plain(self, spans: InMemorySpanExporter, fake_anthropic: FakeAnthropic) -> None:
        message = self.call(fake_anthropic, stream=False).choices[0].message

        assert message.reasoning_content
        assert self.reply_parts(spans) == [
            {"type": "reasoning", "content": message.reasoning_content},
            {"type": "text", "content": message.content},
        ]
