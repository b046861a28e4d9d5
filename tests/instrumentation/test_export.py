"""The exporter `instrument()` sets up: every span reaches the collector, however long its calls.

An OTLP request has a size limit at the receiving end (the collector's `ASSAY_MAX_REQUEST_BYTES`,
16 MiB; an OpenTelemetry Collector's gRPC receiver, 4 MiB), and the SDK's batch processor sends
up to 512 spans in one request whatever their size: a service whose calls carry long prompts
(documents in the context) would have whole batches refused, every call in them lost.
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import _export
from assay.instrumentation._export import SizeBoundedExporter, span_chars
from tests.conftest import RunningCollector
from tests.instrumentation.test_setup import run_python

CALLS = 80
PROMPT_CHARS = 250_000  # about 60k tokens: a long document in the context
# Together about 20 MB of prompts: more than one request may carry.
assert CALLS * PROMPT_CHARS > 16 * 1024 * 1024

APP = f"""
import os
from assay.instrumentation import instrument
import openai

instrument()
client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="test-key", max_retries=0)
for number in range({CALLS}):
    document = f"document {{number}} " + "lorem ipsum " * ({PROMPT_CHARS} // 12)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": document}}]
    )
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_batch_of_long_prompts_reaches_the_store_whole(
    collector: RunningCollector, protocol: str
) -> None:
    service = f"long-prompts-{uuid.uuid4().hex[:8]}"
    with FakeOpenAI(reply=lambda request: "Read.") as fake:
        run_python(
            APP,
            BASE_URL=fake.base_url,
            OTEL_SERVICE_NAME=service,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_EXPORTER_OTLP_ENDPOINT=(
                collector.grpc_endpoint if protocol == "grpc" else collector.http_url
            ),
            OTEL_BSP_SCHEDULE_DELAY="600000",  # one batch, sent by the exit flush
        )

    rows = collector.wait_for_rows(
        "SELECT length(input_messages) AS chars FROM assay.llm_calls "
        f"WHERE service_name = '{service}'",
        CALLS,
    )
    assert len(rows) == CALLS
    assert all(row["chars"] > PROMPT_CHARS for row in rows)  # each prompt whole


def spans_of(texts: list[str]) -> list[ReadableSpan]:
    """Real SDK spans, one per text, each holding it as an attribute."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for number, text in enumerate(texts):
        with tracer.start_as_current_span(f"span {number}") as span:
            span.set_attribute("text", text)
    return list(exporter.get_finished_spans())


def test_a_batch_is_sent_in_parts_in_order_each_span_once() -> None:
    spans = spans_of(["a" * 400, "b" * 400, "c" * 2_000, "d" * 10, "e" * 10])
    sent = InMemorySpanExporter()
    budget = span_chars(spans[0]) * 2  # two of the first spans fill a request

    result = SizeBoundedExporter(sent, budget).export(spans)

    assert result is SpanExportResult.SUCCESS
    assert [span.name for span in sent.get_finished_spans()] == [span.name for span in spans]
    parts = [len(part) for part in _parts_sent(spans, budget)]
    assert parts == [2, 1, 2]  # the span over the budget alone, the small ones together


def test_small_spans_go_in_one_request() -> None:
    spans = spans_of(["x" * 100] * 50)
    assert [len(part) for part in _parts_sent(spans, 3 * 1024 * 1024)] == [50]


def test_a_part_refused_does_not_stop_the_others() -> None:
    spans = spans_of(["a" * 1_000, "b" * 1_000, "c" * 1_000])
    calls: list[int] = []

    class RefusingTheFirst(InMemorySpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            calls.append(len(calls))
            if len(calls) == 1:
                return SpanExportResult.FAILURE
            return super().export(spans)  # type: ignore[arg-type]

    sent = RefusingTheFirst()
    result = SizeBoundedExporter(sent, span_chars(spans[0])).export(spans)

    assert result is SpanExportResult.FAILURE
    assert [span.name for span in sent.get_finished_spans()] == ["span 1", "span 2"]


def _parts_sent(spans: list[ReadableSpan], budget: int) -> list[list[ReadableSpan]]:
    parts: list[list[ReadableSpan]] = []

    class Recording(InMemorySpanExporter):
        def export(self, part: object) -> SpanExportResult:
            parts.append(list(part))  # type: ignore[call-overload]
            return SpanExportResult.SUCCESS

    SizeBoundedExporter(Recording(), budget).export(spans)
    return parts


def test_a_span_is_sized_by_its_text_whichever_way_the_sdk_holds_it() -> None:
    (span,) = spans_of(["é" * 300])
    public = ReadableSpan(name=span.name, attributes=dict(span.attributes or {}))
    assert span_chars(span) == span_chars(public) > 300


class CollectorGoingDown(InMemorySpanExporter):
    """An exporter whose collector is down while `down` is set: every export fails then."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts: list[list[str]] = []

    def export(self, spans: object) -> SpanExportResult:
        self.attempts.append([span.name for span in spans])  # type: ignore[attr-defined]
        if self.down:
            return SpanExportResult.FAILURE
        return super().export(spans)  # type: ignore[arg-type]


def test_a_batch_the_collector_did_not_take_is_sent_after_the_next_that_it_does() -> None:
    first, second = spans_of(["a", "b"]), spans_of(["c"])
    collector = CollectorGoingDown()
    exporter = SizeBoundedExporter(collector)

    collector.down = True
    assert exporter.export(first) is SpanExportResult.FAILURE
    collector.down = False
    assert exporter.export(second) is SpanExportResult.SUCCESS
    exporter.export(spans_of([]))

    assert [span.name for span in collector.get_finished_spans()] == ["span 0", "span 0", "span 1"]
    assert collector.attempts == [["span 0", "span 1"], ["span 0"], ["span 0", "span 1"]]


def test_a_kept_batch_is_sent_once_more_only() -> None:
    # A batch refused for what it holds would be refused every time: it must not come back.
    collector = CollectorGoingDown()
    exporter = SizeBoundedExporter(collector)
    collector.down = True
    exporter.export(spans_of(["refused"]))

    exporter.export(spans_of(["also refused"]))  # fails: the kept one waits on
    collector.down = False
    exporter.export(spans_of(["taken"]))  # the two kept are sent again after it
    collector.down = True
    exporter.export(spans_of(["down again"]))
    collector.down = False
    exporter.export(spans_of(["taken too"]))

    assert len(collector.attempts) == 7
    assert collector.attempts[3] == ["span 0", "span 0"]  # the kept ones, together, once
    assert collector.attempts[6] == ["span 0"]  # only the batch that failed since


def test_what_waits_for_the_collector_is_bounded_oldest_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_export, "KEPT_SPANS", 3)
    collector = CollectorGoingDown()
    exporter = SizeBoundedExporter(collector)
    collector.down = True
    for text in ["one", "two", "three", "four", "five"]:
        (span,) = spans_of([text])
        exporter.export([span])
    collector.down = False
    exporter.export([])

    texts = [(span.attributes or {})["text"] for span in collector.get_finished_spans()]
    assert texts == ["three", "four", "five"]
    assert "Assay dropped 1 spans the collector did not take" in caplog.text
