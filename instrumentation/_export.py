"""The span exporter Assay sets up: a batch goes out in requests a collector accepts.

The SDK's batch processor hands its exporter up to 512 spans at a time, whatever their size,
and the OTLP exporter sends them in one request. A receiver bounds its requests (Assay's
collector at 16 MiB, `ASSAY_MAX_REQUEST_BYTES`; an OpenTelemetry Collector's gRPC receiver at
4 MiB) and refuses a bigger one whole: with long prompts in the calls (a document in the
context is hundreds of kilobytes), every call of the batch would be lost. `SizeBoundedExporter`
sends the batch in parts of at most `REQUEST_CHARS` characters of attribute text each.

A process forked after `instrument()` (gunicorn's workers with `--preload`, a `multiprocessing`
pool) gets an exporter of its own: the parent's would share its connection with the child (the
HTTP exporter's kept-alive socket: requests of two processes interleaved on it broke exports in
both, `IncompleteRead`, 5 of 12 calls lost), and gRPC channels are not meant to cross a fork.

A batch the collector did not take is kept and sent once more after the next export that
succeeds: the OTLP exporter retries for 10 s at most, then the SDK drops the batch, so a
collector restarted or down for a minute lost every call made meanwhile (474 of 1,407 calls of
an app calling 28 times a second through a 25 s restart). What is kept is bounded
(`KEPT_SPANS`, `KEPT_CHARS`; the oldest go first), and sent once only: a batch refused for what
it holds would be refused again. The collector stores a span sent twice once.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("assay.instrumentation")

# A request's budget, in characters of span text: 3 Mi characters are 3 MiB as ASCII (under an
# OpenTelemetry Collector's 4 MiB) and at most 12 MiB of UTF-8 (under Assay's 16 MiB).
REQUEST_CHARS = 3 * 1024 * 1024
# What may wait for the collector to come back: as many spans as the SDK's queue holds by default,
# and no more text than 20 of the biggest requests.
KEPT_SPANS = 2048
KEPT_CHARS = 20 * REQUEST_CHARS
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
    """Exports each batch through `exporter` in requests of at most `budget` characters.

    With `renew`, a child process forked from this one replaces the exporter by `renew()`.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        budget: int = REQUEST_CHARS,
        renew: Callable[[], SpanExporter] | None = None,
    ) -> None:
        self.exporter = exporter
        self.budget = budget
        self._renew = renew
        # Spans of failed exports, oldest first, with their sizes; touched only by `export`,
        # which the batch processor calls under its export lock.
        self._kept: deque[tuple[ReadableSpan, int]] = deque()
        self._kept_chars = 0
        # Spans handed to `export` and not yet sent or kept (`unsent`), under `_counting`:
        # the exit flush reads them from another thread, while an export may still be cut.
        self._in_flight = 0
        self._counting = threading.Lock()
        # False once the exit flush counts what is left itself (`unsent`): no second warning.
        self.warn_at_shutdown = True
        # The exporters of the parents, kept alive in the child: collecting one would close
        # connections that the parent still uses.
        self._inherited: list[SpanExporter] = []
        if renew is not None and hasattr(os, "register_at_fork"):
            renew_in_child = weakref.WeakMethod(self._renew_in_child)

            def _after_in_child() -> None:  # weak, as the SDK's own hook: no exporter kept alive
                method = renew_in_child()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=_after_in_child)

    def _renew_in_child(self) -> None:
        assert self._renew is not None
        try:
            renewed = self._renew()
        except Exception:  # the child keeps the parent's exporter rather than none
            logger.warning("Assay could not set up an exporter after fork", exc_info=True)
            return
        self._inherited.append(self.exporter)
        self.exporter = renewed
        self._kept.clear()  # the parent's to send, not the child's
        self._kept_chars = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._counting:
            self._in_flight += len(spans)
        result = self._send(spans, keep=True)
        if result is SpanExportResult.SUCCESS and self._kept:
            with self._counting:
                kept = [span for span, _ in self._kept]
                self._kept.clear()
                self._kept_chars = 0
                self._in_flight += len(kept)
            self._send(kept, keep=False)
        return result

    def unsent(self) -> int:
        """Spans taken by `export` that the collector has not taken: being sent, or kept."""
        with self._counting:
            return self._in_flight + len(self._kept)

    def _send(self, spans: Sequence[ReadableSpan], keep: bool) -> SpanExportResult:
        # A part refused does not stop the next: each part's calls arrive or not on their own.
        result = SpanExportResult.SUCCESS
        for part in request_parts(spans, self.budget):
            sent = False
            try:
                sent = self.exporter.export(part) is SpanExportResult.SUCCESS
            finally:
                with self._counting:
                    self._in_flight -= len(part)
                    if not sent:
                        result = SpanExportResult.FAILURE
                        if keep:
                            self._keep(part)
        return result

    def _keep(self, spans: Sequence[ReadableSpan]) -> None:
        for span in spans:
            chars = span_chars(span)
            self._kept.append((span, chars))
            self._kept_chars += chars
        dropped = 0
        while len(self._kept) > KEPT_SPANS or self._kept_chars > KEPT_CHARS:
            _, chars = self._kept.popleft()
            self._kept_chars -= chars
            dropped += 1
        if dropped:
            logger.warning(
                "Assay dropped %d spans the collector did not take: %d wait for it already",
                dropped,
                len(self._kept),
            )

    def shutdown(self) -> None:
        if self._kept and self.warn_at_shutdown:
            logger.warning(
                "Assay dropped %d spans at shutdown: the collector had not taken them",
                len(self._kept),
            )
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
