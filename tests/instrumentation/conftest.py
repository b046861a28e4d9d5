"""Fixtures for the instrumentation tests: in-memory spans, fake provider servers, clients.

The tracer provider is handed to `instrument(tracer_provider=...)`; the global provider
of the test process is never set (tests that need it run a subprocess).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from anthropic import Anthropic
from openai import OpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import instrument, uninstrument
from tests.fakes.fake_anthropic import FakeAnthropic

# A fixed `created` makes two answers to the same request byte-identical.
FIXED_NOW = 1_750_000_000.0


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def instrument_with(
    tracer_provider: TracerProvider,
) -> Iterator[Callable[..., TracerProvider]]:
    """Instrument with the test provider and the given options; undone after the test."""

    def _instrument(**options: Any) -> TracerProvider:
        uninstrument()
        return instrument(tracer_provider=tracer_provider, **options)

    yield _instrument
    uninstrument()


@pytest.fixture
def spans(
    instrument_with: Callable[..., TracerProvider], span_exporter: InMemorySpanExporter
) -> InMemorySpanExporter:
    """Instrumented with content capture on; the exporter holding the finished spans."""
    instrument_with(capture_content=True)
    return span_exporter


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(clock=lambda: FIXED_NOW) as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[OpenAI]:
    with OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as openai_client:
        yield openai_client


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def anthropic_client(fake_anthropic: FakeAnthropic) -> Iterator[Anthropic]:
    with Anthropic(
        base_url=fake_anthropic.base_url, api_key="test-key", max_retries=0
    ) as anthropic_client:
        yield anthropic_client


@pytest.fixture(autouse=True)
def _no_span_ended_twice() -> Iterator[None]:
    """Fail any test in which the SDK saw `end()` on a span that had already ended."""
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Collect(logging.WARNING)
    sdk_logger = logging.getLogger("opentelemetry.sdk.trace")
    sdk_logger.addHandler(handler)
    try:
        yield
    finally:
        sdk_logger.removeHandler(handler)
    twice = [r for r in records if "ended span" in r.getMessage()]
    assert not twice, "a span was ended more than once"


@pytest.fixture
def only_span(span_exporter: InMemorySpanExporter) -> Callable[[], ReadableSpan]:
    """Returns the single span exported so far; fails when there are none or several."""

    def _only_span() -> ReadableSpan:
        finished = span_exporter.get_finished_spans()
        assert len(finished) == 1, [span.name for span in finished]
        return finished[0]

    return _only_span
