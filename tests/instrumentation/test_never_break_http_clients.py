"""Never break the app, for google-genai, mistralai, cohere and ollama.

Each Assay failure point is forced to raise (reading the request, reading the response,
reading a stream chunk, pricing, opening the span, a span processor). The user's call must
return the same value, raise the same exception and stream the same chunks as without Assay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cohere
import ollama
import pytest
from google import genai
from google.genai import types
from mistralai.client import Mistral
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.instrumentation import _spans, pricing, uninstrument
from assay.instrumentation.providers import cohere as cohere_provider
from assay.instrumentation.providers import google_genai as gemini_provider
from assay.instrumentation.providers import mistral as mistral_provider
from assay.instrumentation.providers import ollama as ollama_provider
from assay.instrumentation.providers._call import CallWrappers
from tests.fakes import fake_cohere, fake_gemini, fake_mistral, fake_ollama
from tests.fakes._server import FakeServer
from tests.instrumentation.breaking import break_hook

QUESTION = [{"role": "user", "content": "Why is the sky blue today?"}]


@dataclass(frozen=True)
class Client:
    """How one client library is driven against its fake."""

    name: str
    fake: type[FakeServer]
    wrappers: type[CallWrappers]  # the provider's hooks, where failures are forced
    make: Callable[[str], Any]  # base URL → sync client
    make_async: Callable[[str], Any]
    plain: Callable[[Any, str], Any]  # client, model → response
    stream: Callable[[Any, str], Any]  # client, model → iterable of chunks
    async_stream: Callable[[Any, str], Any]  # async client, model → awaitable of async iterable
    failing_model: str


async def _awaited(value: Any) -> Any:
    return value


CLIENTS = [
    Client(
        "google-genai",
        fake_gemini.FakeGemini,
        gemini_provider.GoogleGenAIWrappers,
        lambda url: genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url)),
        lambda url: genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url)).aio,
        lambda c, model: c.models.generate_content(model=model, contents="Why is the sky blue?"),
        lambda c, model: c.models.generate_content_stream(model=model, contents="Why blue?"),
        lambda c, model: c.models.generate_content_stream(model=model, contents="Why blue?"),
        fake_gemini.FAIL_400,
    ),
    Client(
        "mistralai",
        fake_mistral.FakeMistral,
        mistral_provider.MistralWrappers,
        lambda url: Mistral(api_key="k", server_url=url),
        lambda url: Mistral(api_key="k", server_url=url),
        lambda c, model: c.chat.complete(model=model, messages=QUESTION),
        lambda c, model: c.chat.stream(model=model, messages=QUESTION),
        lambda c, model: c.chat.stream_async(model=model, messages=QUESTION),
        fake_mistral.FAIL_401,
    ),
    Client(
        "cohere",
        fake_cohere.FakeCohere,
        cohere_provider.CohereWrappers,
        lambda url: cohere.ClientV2(api_key="k", base_url=url, max_retries=0),
        lambda url: cohere.AsyncClientV2(api_key="k", base_url=url, max_retries=0),
        lambda c, model: c.chat(model=model, messages=QUESTION),
        lambda c, model: c.chat_stream(model=model, messages=QUESTION),
        lambda c, model: _awaited(c.chat_stream(model=model, messages=QUESTION)),
        fake_cohere.FAIL_429,
    ),
    Client(
        "ollama",
        fake_ollama.FakeOllama,
        ollama_provider.OllamaWrappers,
        lambda url: ollama.Client(host=url),
        lambda url: ollama.AsyncClient(host=url),
        lambda c, model: c.chat(model=model, messages=QUESTION),
        lambda c, model: c.chat(model=model, messages=QUESTION, stream=True),
        lambda c, model: c.chat(model=model, messages=QUESTION, stream=True),
        fake_ollama.MISSING,
    ),
]
MODELS = {
    "google-genai": "gemini-2.0-flash",
    "mistralai": "mistral-small-latest",
    "cohere": "command-r",
    "ollama": "llama3.2",
}


def dump(value: Any) -> Any:
    # The HTTP headers the Google client keeps on responses carry the server's clock.
    return value.model_dump(mode="json", exclude={"sdk_http_response"})


def run(client: Client, base_url: str) -> dict[str, Any]:
    """Everything the user sees of one plain call, one stream, one early stop, one async
    stream and one failing call."""
    sync = client.make(base_url)
    model = MODELS[client.name]
    seen: dict[str, Any] = {"plain": dump(client.plain(sync, model))}
    seen["stream"] = [dump(chunk) for chunk in client.stream(sync, model)]
    stream = client.stream(sync, model)
    iterator = iter(stream)
    seen["early"] = dump(next(iterator))
    close = getattr(stream, "close", None)
    if close is not None:
        close()

    async def async_stream() -> list[Any]:
        chunks = await client.async_stream(client.make_async(base_url), model)
        return [dump(chunk) async for chunk in chunks]

    seen["async_stream"] = asyncio.run(async_stream())
    try:
        client.plain(sync, client.failing_model)
    except Exception as error:
        # Cohere's message quotes the response headers, the server's clock included.
        body = getattr(error, "body", None)
        seen["error"] = (type(error), str(error) if body is None else body)
    return seen


class _RaisingProcessor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("a broken span processor")


def _force(
    point: str, client: Client, monkeypatch: pytest.MonkeyPatch, provider: TracerProvider
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"forced Assay failure: {point}")

    if point in ("describe", "response", "chunk"):
        break_hook(monkeypatch, client.wrappers, point)
    elif point == "pricing":
        monkeypatch.setattr(pricing, "cost_usd", boom)
    elif point == "span start":
        monkeypatch.setattr(_spans.LLMCall, "__init__", boom)
    elif point == "span processor":
        provider.add_span_processor(_RaisingProcessor())


@pytest.fixture(params=CLIENTS, ids=[c.name for c in CLIENTS])
def client(request: pytest.FixtureRequest) -> Client:
    return request.param


@pytest.fixture
def base_url(client: Client) -> Iterator[str]:
    with client.fake() as server:
        yield server.base_url


@pytest.fixture
def baseline(client: Client, base_url: str) -> dict[str, Any]:
    uninstrument()
    return run(client, base_url)


@pytest.mark.parametrize(
    "point", ["describe", "response", "chunk", "pricing", "span start", "span processor"]
)
def test_a_failure_inside_assay_leaves_results_errors_and_chunks_unchanged(
    client: Client,
    base_url: str,
    baseline: dict[str, Any],
    point: str,
    instrument_with: Callable[..., TracerProvider],
    span_exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = instrument_with(capture_content=True)
    _force(point, client, monkeypatch, provider)
    caplog.set_level(logging.DEBUG, logger="assay.instrumentation")

    seen = run(client, base_url)

    assert seen == baseline
    assert "error" in seen and "stream" in seen
    if point == "span processor":
        return  # the SDK's own failure, not Assay's: nothing for Assay to log
    assert any("Assay instrumentation failed" in r.getMessage() for r in caplog.records)
    spans = span_exporter.get_finished_spans()
    if point in ("describe", "span start"):
        assert spans == ()  # the call ran bare
    else:
        assert len(spans) == 5  # plain, stream, early stop, async stream, failing call


def test_without_failures_every_call_has_its_span(
    client: Client,
    base_url: str,
    baseline: dict[str, Any],
    instrument_with: Callable[..., TracerProvider],
    span_exporter: InMemorySpanExporter,
) -> None:
    instrument_with(capture_content=True)

    assert run(client, base_url) == baseline
    assert len(span_exporter.get_finished_spans()) == 5
