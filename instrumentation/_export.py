"""The span exporter Assay sets up: a batch goes out in requests a collector accepts.

The SDK's batch processor hands its exporter up to 512 spans at a time, whatever their size,
and the OTLP exporter sends them in one request. A receiver bounds its requests (Assay's
collector at 16 MiB, `ASSAY_MAX_REQUEST_BYTES`; an OpenTelemetry Collector's gRPC receiver at
4 MiB) and refuses a bigger one whole: with long prompts in the calls (a document in the
context is hundreds of kilobytes), every call of the batch would be lost. `SizeBoundedExporter`
sends the batch in parts of at most `REQUEST_CHARS` characters of attribute text each.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# A request's budget, in characters of span text: 3 Mi characters are 3 MiB as ASCII (under an
# OpenTelemetry Collector's 4 MiB) and at most 12 MiB of UTF-8 (under Assay's 16 MiB).
REQUEST_CHARS = 3 * 1024 * 1024
# What a span costs beyond its text values: ids, times, names, numbers, the protobuf framing.
_SPAN_OVERHEAD = 200
_VALUE_OVERHEAD = 16


def span_chars(span: ReadableSpan) -> int:
    """About how much of a request the span takes: its text values, counted in characters."""
    # This runs per span in the export thread, and the SDK's public properties were half of it:
    # `span.attributes` is a read-only view of its BoundedAttributes, which answers each
    # value through a Python `__getitem__` after copying its keys, and `span.events` builds a
    # tuple through a generator; where the SDK keeps them as a plain dict and a sequence (an
    # ended span's no longer change), they are read directly: 44k → 22k instructions a span
    # (callgrind, an LLM span of 20 attributes), against 580k for the SDK to encode it.
    values = getattr(getattr(span, "_attributes", None), "_dict", None)
    size = _SPAN_OVERHEAD + _text_chars(values if isinstance(values, dict) else span.attributes)
    events = getattr(span, "_events", None)
    for event in span.events if events is None else events:  # rare: an exception's
        size += _text_chars(event.attributes)
    return size


def _text_chars(attributes: Mapping[str, object] | None) -> int:
    size = 0
    for value in (attributes or {}).values():
        size += len(value) if value.__class__ is str else _VALUE_OVERHEAD
    return size


def request_parts(spans: Sequence[ReadableSpan], budget: int) -> Iterator[Sequence[ReadableSpan]]:
    """`spans` in consecutive parts of at most `budget` characters each (a bigger span alone)."""
    start, size = 0, 0
    for index, span in enumerate(spans):
        chars = span_chars(span)
        if index > start and size + chars > budget:
            yield spans[start:index]
            start, size = index, 0
        size += chars
    if start < len(spans):
        yield spans[start:] if start else spans


class SizeBoundedExporter(SpanExporter):
    """Exports each batch through `exporter` in requests of at most `budget` characters."""

    def __init__(self, exporter: SpanExporter, budget: int = REQUEST_CHARS) -> None:
        self.exporter = exporter
        self.budget = budget

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # A part refused does not stop the next: each part's calls arrive or not on their own.
        result = SpanExportResult.SUCCESS
        for part in request_parts(spans, self.budget):
            if self.exporter.export(part) is not SpanExportResult.SUCCESS:
                result = SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
