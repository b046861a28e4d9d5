"""Raw responses (`with_raw_response`, `with_streaming_response`) record what plain calls do.

The application reads the body itself, through `parse()`: the span stays open until then and
holds the tokens, cost, reply, finish reason and time to first token of what `parse()` gave
(an openai stream not asked for usage has its tokens estimated: Assay cannot hide a usage chunk
in a body the application reads). What the application gets is the client's own response
object, and from `parse()` the client's stream, chunk for chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from anthropic import Anthropic, AsyncAnthropic
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import semconv
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.instrumentation.chat_requests import json_attribute

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-5"
QUESTION = [{"role": "user", "content": "Tell me about streaming APIs."}]


def reply_text(span: Any) -> str:
    messages = json_attribute(span, semconv.OUTPUT_MESSAGES)
    return "".join(part.get("content") or "" for part in messages[0]["parts"])


def openai_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def anthropic_text(events: list[Any]) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


# Each way of reading a raw stream: (client library, how the call is made, async or not).
WAYS = [
    pytest.param(library, how, is_async, id=f"{library}-{how}-{'async' if is_async else 'sync'}")
    for library in ("openai", "anthropic")
    for how in ("with_raw_response", "with_streaming_response")
    for is_async in (False, True)
]


class RawStreamCall:
    """One streamed call through `how`: `read()` makes it, checks nothing has ended before the
    body is read, reads the parsed stream to its end and returns its chunks."""

    def __init__(self, library: str, how: str, is_async: bool, base_url: str) -> None:
        self.library, self.how, self.is_async, self.base_url = library, how, is_async, base_url

    def _resource(self) -> tuple[Any, dict[str, Any]]:
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": "k", "max_retries": 0}
        if self.library == "openai":
            client = (AsyncOpenAI if self.is_async else OpenAI)(**options)
            request = {"model": GPT, "messages": QUESTION, "stream": True}
            return getattr(client.chat.completions, self.how), request
        client = (AsyncAnthropic if self.is_async else Anthropic)(**options)
        request = {"model": CLAUDE, "max_tokens": 300, "messages": QUESTION, "stream": True}
        return getattr(client.messages, self.how), request

    def stream_class(self) -> type:
        library = openai if self.library == "openai" else anthropic
        return library.AsyncStream if self.is_async else library.Stream

    def read(self, before_reading: Callable[[Any, Any], None]) -> list[Any]:
        resource, request = self._resource()
        if not self.is_async:
            if self.how == "with_raw_response":
                response = resource.create(**request)
                before_reading(response, None)
                stream = response.parse()
                before_reading(response, stream)
                return list(stream)
            with resource.create(**request) as response:
                before_reading(response, None)
                stream = response.parse()
                before_reading(response, stream)
                return list(stream)

        async def read_async() -> list[Any]:
            if self.how == "with_raw_response":
                response = await resource.create(**request)
                before_reading(response, None)
                stream = response.parse()
                if asyncio.iscoroutine(stream):  # anthropic's raw response parses async
                    stream = await stream
                before_reading(response, stream)
                return [chunk async for chunk in stream]
            async with resource.create(**request) as response:
                before_reading(response, None)
                stream = await response.parse()
                before_reading(response, stream)
                return [chunk async for chunk in stream]

        return asyncio.run(read_async())


@pytest.mark.parametrize(("library", "how", "is_async"), WAYS)
def test_a_raw_stream_records_what_a_plain_stream_does(
    library: str,
    how: str,
    is_async: bool,
    spans: InMemorySpanExporter,
    fake: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
) -> None:
    base_url = fake.base_url if library == "openai" else fake_anthropic.base_url
    call = RawStreamCall(library, how, is_async, base_url)
    seen: list[Any] = []

    def before_reading(response: Any, stream: Any) -> None:
        # The span waits for the body: nothing has ended while the application holds the
        # response, nor when parse() has handed over the stream unread.
        assert not spans.get_finished_spans()
        assert type(response).__module__.startswith(library)  # the client's own object
        if stream is not None:
            assert isinstance(stream, call.stream_class())
            seen.append(stream)

    chunks = call.read(before_reading)

    (span,) = spans.get_finished_spans()
    attrs = span.attributes
    text = openai_text(chunks) if library == "openai" else anthropic_text(chunks)
    assert text and reply_text(span) == text
    assert attrs[semconv.USAGE_INPUT_TOKENS] > 0 and attrs[semconv.USAGE_OUTPUT_TOKENS] > 0
    assert attrs[semconv.COST_USD] > 0
    assert attrs[semconv.RESPONSE_FINISH_REASONS] == (
        ("stop",) if library == "openai" else ("end_turn",)
    )
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert semconv.STREAM_CLOSED_EARLY not in attrs
    if library == "openai":  # not asked for usage, as the application sent it
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_ESTIMATED
        assert "stream_options" not in fake.requests[-1]
    else:
        final = [e for e in chunks if e.type == "message_delta"][-1]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED


def test_an_openai_raw_stream_asked_for_usage_reports_it(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=GPT, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    usage = chunks[-1].usage  # the application asked, so it gets the usage chunk
    attrs = only_span().attributes
    assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
    assert attrs[semconv.USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage.completion_tokens


def test_parse_twice_gives_the_same_stream(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=GPT, messages=QUESTION, stream=True
    )
    first = raw.parse()
    assert raw.parse() is first  # the client caches it; so does Assay's stream proxy
    for _ in first:
        pass
    assert only_span().attributes[semconv.USAGE_OUTPUT_TOKENS] > 0


def test_a_stream_left_inside_its_block_ends_closed_early(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=GPT, messages=QUESTION, stream=True
    ) as response:
        next(iter(response.parse()))
        assert not spans.get_finished_spans()

    attrs = only_span().attributes
    assert attrs[semconv.STREAM_CLOSED_EARLY] is True
    assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_a_body_read_without_parse_ends_when_the_response_closes(
    spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
) -> None:
    with anthropic_client.messages.with_streaming_response.create(
        model=CLAUDE, max_tokens=300, messages=QUESTION, stream=True
    ) as response:
        lines = list(response.iter_lines())
        assert not spans.get_finished_spans()  # ends with the body, not with the headers

    assert any("message_stop" in line for line in lines)
    attrs = only_span().attributes
    assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_NONE  # Assay read none of it


@pytest.mark.parametrize("library", ["openai", "anthropic"])
def test_a_plain_answer_parsed_in_a_streaming_response_block(
    library: str, spans: InMemorySpanExporter, client: OpenAI, anthropic_client: Anthropic
) -> None:
    if library == "openai":
        with client.chat.completions.with_streaming_response.create(
            model=GPT, messages=QUESTION
        ) as response:
            answer = response.parse()
        tokens = (answer.usage.prompt_tokens, answer.usage.completion_tokens)
        text = answer.choices[0].message.content
    else:
        with anthropic_client.messages.with_streaming_response.create(
            model=CLAUDE, max_tokens=300, messages=QUESTION
        ) as response:
            answer = response.parse()
        tokens = (answer.usage.input_tokens, answer.usage.output_tokens)
        text = answer.content[0].text

    (span,) = spans.get_finished_spans()
    attrs = span.attributes
    assert (attrs[semconv.USAGE_INPUT_TOKENS], attrs[semconv.USAGE_OUTPUT_TOKENS]) == tokens
    assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
    assert reply_text(span) == text
