"""The path from receivers to the store: the spool, and the writer that drains it in batches."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import math
import operator
import os
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from assay.collector.allocator import release_free_memory
from assay.collector.deadletter import DeadLetter, DeadLetterFull
from assay.collector.normalize.evaluation_results import evaluation_scores
from assay.collector.normalize.llm_messages import attach_log_messages
from assay.collector.normalize.logs import normalize_logs
from assay.collector.normalize.metrics import MetricBatch, normalize_metrics
from assay.collector.normalize.otlp import SIGNALS
from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.redaction import Redactor
from assay.collector.resent import first_copies, stored_spans, without_spans
from assay.collector.schema import (
    WRITTEN_ROWS,
    LlmCallRow,
    LlmMessagesRow,
    LogRow,
    MetricGaugeRow,
    MetricHistogramRow,
    MetricSumRow,
    ScoreRow,
    ToolCallRow,
    TraceRow,
    column_names,
    from_values,
    to_values,
)
from assay.collector.settings import CollectorSettings
from assay.collector.spool import Segment, Spool, SpoolFull
from assay.collector.stage_timing import stage
from assay.collector.store.base import DataError, Inserted, Store, StoreError

if TYPE_CHECKING:
    from assay.collector.evaluation.online import OnlineEvaluation

log = logging.getLogger("assay.collector.pipeline")

# How many refused inserts the writer spends narrowing down the rows a table's batch cannot
# hold (halving the batch each time): a few bad rows are found one by one, and the rest of a
# batch that is bad throughout goes to the dead-letter folder in whole pieces.
SPLIT_BUDGET = 64
# How often the writer looks for dead-letter entries someone asked to retry, in seconds.
RETRY_SCAN_INTERVAL = 1.0
# Segments held at once between the reader and the spool's release: one being stored while the
# next has its spans stored ahead and the one after is read and normalized (the store's inserts
# run in the engine, off Python's lock, so they overlap on two cores).
SEGMENTS_IN_FLIGHT = 3


# The cyclic garbage collector's thresholds for a collector process (Python's: 700, 10, 10).
# The ingest path allocates millions of short-lived objects (protobuf wrappers, rows, column
# lists) and makes no reference cycles of its own, so at Python's thresholds a tenth of its CPU
# went to collections that found nothing (measured with gc.callbacks in bench/ingest_stages.py).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """For a collector process, once it has imported its modules: everything allocated so far
    (modules, settings, compiled rules) moves out of the collector's sight for good, and
    collections run less often. The process's own; never called in a test process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Overloaded(Exception):
    """The collector cannot take more right now; the client should retry after `retry_after` s."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class PipelineStats:
    requests_accepted: int = 0
    requests_refused: int = 0
    # Records refused at the receiver (a time past what the store holds) and values clamped
    # (receivers/validation.py); the client was told in the partial-success answer.
    items_rejected: int = 0
    values_clamped: int = 0
    spans_received: int = 0
    logs_received: int = 0
    metric_points_received: int = 0
    # New otel_traces rows, but for a plain span a client sent again in a later request: not
    # looked up (too dear per plain span, README), it counts again (otel_traces keeps one row).
    spans_written: int = 0
    llm_calls_written: int = 0
    logs_written: int = 0
    metric_points_written: int = 0
    metric_points_skipped: int = 0  # kinds without a table: exponential histograms, summaries
    segments_written: int = 0
    write_failures: int = 0
    # Dead-letter entries written (one per batch and table the store refused rows of) and the
    # rows in them; rows of entries retried that the store then took.
    deadlettered_batches: int = 0
    deadlettered_rows: int = 0
    deadletter_retried_rows: int = 0
    write_ms_total: float = 0.0  # time spent in successful segment writes
    write_ms_max: float = 0.0  # the slowest of them since the start: never above the total
    # The slowest since the monitor's last sample (it reads and resets this one).
    write_ms_interval_max: float = 0.0
    last_write_error: str = ""
    last_write_ok: float = 0.0
    # Since when (Unix time) every write has failed; 0: the last one stored its segment.
    write_failing_since: float = 0.0
    # Requests refused, by reason: overloaded (the spool's size limit), disk_full (the spool's
    # disk refused the record), invalid, too_large, unauthenticated, media_type
    refused: dict[str, int] = field(default_factory=dict)
    # Rows the store dropped as duplicates of rows it had (a replayed segment), by table
    deduplicated: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                k: dict(v) if isinstance(v, dict) else v
                for k, v in vars(self).items()
                if k != "lock"
            }

    def refuse(self, reason: str) -> None:
        with self.lock:
            self.requests_refused += 1
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass
class _Ahead:
    """A segment for the writer: its rows, and the tables stored ahead of it (`otel_traces`)."""

    segment: Segment
    rows: _Rows
    done: dict[str, Inserted] = field(default_factory=dict)
    # The spans' insert failed: it may have stored them all the same (a server's timeout).
    uncertain: bool = False


@dataclass
class _Rows:
    traces: TraceBatch = field(default_factory=TraceBatch)
    logs: list[LogRow] = field(default_factory=list)
    metrics: MetricBatch = field(default_factory=MetricBatch)
    llm_messages: list[LlmMessagesRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)  # gen_ai.evaluation.result events
    # Copies of spans, calls and tool calls a client sent again (collector/resent.py), by
    # table: left out of the segment's rows, counted as deduplicated.
    resent: dict[str, int] = field(default_factory=dict)
    # Spans (`otel_traces`) of the calls and tool calls other segments stored: inserted all the
    # same (stored ahead, before the look-up; ReplacingMergeTree folds them), counted as
    # deduplicated, not as written.
    stored_copies: int = 0

    def tables(self) -> list[tuple[str, list[Any]]]:
        """The rows to store, by table, in the order they are inserted; empty tables left out."""
        sources: tuple[list[Any], ...] = (
            self.traces.traces,
            self.traces.llm_calls,
            self.traces.spans,
            self.traces.tool_calls,
            self.logs,
            self.llm_messages,
            self.scores,
            *self.metrics.tables(),
        )
        return [(r[0].table, r) for r in sources if r]


# What a request's items are called in the stats, by signal.
_RECEIVED = {
    "traces": "spans_received",
    "logs": "logs_received",
    "metrics": "metric_points_received",
}


# An otel_traces row's span (its columns are named as the OTel collector's schema names them).
_TRACE_KEY = operator.attrgetter("TraceId", "SpanId")

_METRIC_TABLES = {MetricSumRow.table, MetricGaugeRow.table, MetricHistogramRow.table}


def _without(rows: list[Any], refused: list[range]) -> list[Any]:
    if not refused:
        return rows
    out = set().union(*refused)
    return [row for i, row in enumerate(rows) if i not in out]


def _once(rows: _Rows, kept: list[Any], sent: list[Any]) -> list[Any]:
    """`kept`: what is left of `sent` without the copies of a resent span, which are counted."""
    if len(kept) < len(sent):
        table = sent[0].table
        rows.resent[table] = rows.resent.get(table, 0) + len(sent) - len(kept)
    return kept


def _with_counts(done: dict[str, Inserted], counted: dict[str, int]) -> None:
    """What a batch's inserts stored, counted together once they ended, into `done`: only for
    tables done (a table whose insert failed is inserted again, and counted then). Parts another
    writer added meanwhile (a test's own INSERT ... SELECT on a shared store) count as new:
    never more than were sent, so a deduplicated count can never go negative."""
    for table, new in counted.items():
        inserted = done.get(table)
        if inserted is not None:
            done[table] = Inserted(inserted.rows, min(new, inserted.rows))


def _written(segment: Segment, table: str, inserted: Inserted, landed: dict[str, int]) -> int:
    """How many of a segment's rows of `table` this run stored: those the store confirmed as new
    (all it took, where it cannot tell), and those an insert of this run stored before it failed
    (a lost reply; the retry finds them there). A segment spooled by this run carries tokens no
    earlier run sent, so whatever the store had of it, this run stored, counted or not (a first
    attempt is not counted). Only a replayed segment's rows can have been stored by an earlier
    run (a crash between storing and releasing it), which counted them then: those are
    duplicates here."""
    if inserted.new is None or not segment.replayed:
        return inserted.rows
    return min(inserted.rows, inserted.new + landed.get(table, 0))


def _decode(signal: str, payload: bytes) -> Message:
    request = SIGNALS[signal]()
    request.ParseFromString(payload)
    return request


class Pipeline:
    """Receivers `submit` validated requests into the spool and are acknowledged once the spool
    has them. Three threads drain it in order: the reader turns each sealed segment into rows
    while the spans writer stores the spans of the segment before it and the writer the rest of
    the one before that, then releases it from the spool."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        settings: CollectorSettings,
        evaluation: OnlineEvaluation | None = None,
        deadletter: DeadLetter | None = None,
        kept_seconds: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.store = store
        # How long the store keeps each signal's records, by table (retention.kept_seconds):
        # the receivers refuse what no table of theirs would keep. None: no bound.
        self._kept_ns = {
            signal: {
                table: int(seconds * 1e9)
                for table, seconds in by_table.items()
                if math.isfinite(seconds)
            }
            for signal, by_table in (kept_seconds or {}).items()
        }
        self.evaluation = evaluation
        self.spool = spool
        # Without one, rows the store refuses are retried like a failing store's.
        self.deadletter = deadletter
        self._retries_checked = 0.0
        self.settings = settings
        self.stats = PipelineStats()
        # Used by the receivers: content is masked before it reaches the spool.
        self.redactor = Redactor.from_config(settings.redaction)
        # Receivers wait for their request's fsync on threads of their own: on asyncio's default
        # executor (6 threads on 2 cores) they queued behind the UI's and API's reads, and 8
        # slow calls-list searches took ingest from 3,356 to 171 spans/s (docs/capacity.md,
        # "Hostile clients"). As many threads as that executor has.
        self._syncs = ThreadPoolExecutor(
            min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="assay-spool-sync"
        )
        self._stopping = threading.Event()
        self._stop_by = math.inf  # monotonic time after which the writer takes no new segment
        # Segments read and normalized, in spool order, for the spans' writer; None: no more.
        self._ready: queue.SimpleQueue[tuple[Segment, _Rows] | None] = queue.SimpleQueue()
        # The same with what the spans' writer stored of them, for the writer; None: no more.
        self._ahead: queue.SimpleQueue[_Ahead | None] = queue.SimpleQueue()
        self._in_flight = threading.Semaphore(SEGMENTS_IN_FLIGHT)
        self._writer_gone = threading.Event()
        self._reader = threading.Thread(target=self._read, name="assay-reader", daemon=True)
        self._spans_writer = threading.Thread(
            target=self._store_spans_ahead, name="assay-spans-writer", daemon=True
        )
        self._thread = threading.Thread(target=self._run, name="assay-writer", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._spans_writer.start()
        self._thread.start()

    def oldest_kept(self, signal: str) -> dict[str, int]:
        """The oldest time (Unix ns) a row of a `signal` record can have and be kept, by table;
        a table not named keeps any."""
        kept = self._kept_ns.get(signal)
        if not kept:
            return {}
        now = time.time_ns()
        return {table: now - ns for table, ns in kept.items()}

    async def submit(self, signal: str, payload: bytes, items: int) -> None:
        """Spool a request (protobuf bytes); returns once it is durable. Raises Overloaded."""
        try:
            ticket = self.spool.append(signal, payload)
            if self.spool.syncs:  # off the event loop: fsync blocks
                await asyncio.get_running_loop().run_in_executor(
                    self._syncs, self.spool.sync, ticket
                )
        except SpoolFull as exc:
            self.stats.refuse("disk_full" if exc.disk else "overloaded")
            raise Overloaded(str(exc), exc.retry_after) from exc
        self.stats.add(
            requests_accepted=1,
            **{_RECEIVED[signal]: items},
        )

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything spooled so far is stored (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool.stats().bytes == 0:
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking requests, write what can be written within `timeout` (the settings'
        shutdown_timeout), leave the rest in the spool. Returns once the writer has left the
        store: closing a store (chDB) under a running insert crashes the process."""
        timeout = timeout if timeout is not None else self.settings.shutdown_timeout
        self._stop_by = time.monotonic() + timeout
        self._stopping.set()
        self.spool.close()
        # self._syncs stays open: a request appended just before the close still has its
        # fsync waited for (and is acknowledged), as before; its idle threads end at exit.
        # Both store-writing threads within one deadline (they run at the same time): the time
        # to write, then as much again for an insert still running, never cut.
        deadline = self._stop_by + timeout
        for thread in (self._thread, self._spans_writer):
            thread.join(max(self._stop_by - time.monotonic(), 0.0))
            if thread.is_alive():
                log.warning("shutdown: %s is still storing a segment; waiting for it", thread.name)
                thread.join(max(deadline - time.monotonic(), 0.0))
                if thread.is_alive():
                    log.error(
                        "shutdown: %s is still busy after %.0f s; leaving it",
                        thread.name,
                        2 * timeout,
                    )
        # The reader never touches the store; it ends within a segment's normalizing.
        self._reader.join(timeout)

    def _out_of_time(self) -> bool:
        return self._stopping.is_set() and time.monotonic() >= self._stop_by

    # --- the reader and writer threads ------------------------------------------------------------
    def _read(self) -> None:
        """Segments, oldest first, into rows for the writer: at most SEGMENTS_IN_FLIGHT at once
        (counting the one being stored). Ends when the spool is closed and drained, or when the
        writer has gone."""
        last = 0  # the seq of the last segment read
        try:
            while not self._writer_gone.is_set():
                if not self._in_flight.acquire(timeout=0.5):
                    continue
                segment = self._segment_after(last)
                if segment is None:
                    return
                last = segment.seq
                rows = self._rows(segment)
                # The writer needs the rows, not the payloads: a segment's worth less held,
                # here too while the reader waits for the writer.
                self._ready.put((dataclasses.replace(segment, records=[]), rows))
                del segment, rows
        finally:
            self._ready.put(None)

    def _segment_after(self, last: int) -> Segment | None:
        """The next sealed segment after `last`, once there is one; None when there will be no
        more for the reader (the writer has gone, or the spool is closed and drained, or the
        shutdown is out of time)."""
        while not (self._writer_gone.is_set() or self._out_of_time()):
            segment = self.spool.next_segment(timeout=0.5, after=last)
            if segment is not None or self._stopping.is_set():
                return segment
        return None

    def _store_spans_ahead(self) -> None:
        """A segment's spans (`otel_traces`) stored while the writer stores the rest of the
        segment before it: the two inserts run in the engine at once. Only a segment's first
        attempt in the run that spooled it: its token was never sent, so the insert stores every
        row and needs no count; whatever fails here the writer does again, counted. Each
        segment's tables are still stored in the writer's order (`otel_traces` first)."""
        try:
            while not self._writer_gone.is_set():
                try:
                    ready = self._ready.get(timeout=0.5)
                except queue.Empty:
                    continue
                if ready is None:
                    return
                segment, rows = ready
                self._ahead.put(self._spans_ahead(segment, rows))
                del ready, segment, rows
        finally:
            self._ahead.put(None)

    def _spans_ahead(self, segment: Segment, rows: _Rows) -> _Ahead:
        spans = rows.traces.traces
        if segment.replayed or not spans or self._out_of_time():
            return _Ahead(segment, rows)
        table = spans[0].table
        try:
            with self.store.counting({}, first_time=True):
                stored = self.store.insert_rows(spans, dedup_token=f"{segment.token}-{table}")
        except Exception as exc:  # the writer inserts them again, counted, and retries
            self._write_failed(exc)
            log.warning(
                "storing the spans of segment %d failed; the writer retries: %s", segment.seq, exc
            )
            return _Ahead(segment, rows, uncertain=True)
        return _Ahead(segment, rows, {table: stored})

    def _run(self) -> None:
        try:
            self._write_all()
        finally:
            self._writer_gone.set()

    def _write_all(self) -> None:
        while True:
            if self._out_of_time():
                left = self.spool.stats()
                if left.bytes:
                    log.warning(
                        "shutdown: %d segment(s), %d bytes, left in the spool for the next start",
                        left.segments,
                        left.bytes,
                    )
                return
            self._retry_dead_letters()
            try:
                ready = self._ahead.get(timeout=0.5)
            except queue.Empty:
                continue
            if ready is None:
                return  # the spool is closed and drained
            if not self._store(ready.segment, ready.rows, ready.done, ready.uncertain):
                return  # shutting down with the store failing: the segment stays spooled
            self.spool.release(ready.segment)
            del ready  # the segment's rows, the largest thing the writer holds
            self._in_flight.release()
            release_free_memory()

    def _rows(self, segment: Segment) -> _Rows:
        rows = _Rows()
        for signal, payload in segment.records:
            try:
                with stage("decode (writer)"):
                    request = _decode(signal, payload)
                with stage("normalize"):
                    if isinstance(request, ExportTraceServiceRequest):
                        normalize_traces(request, rows.traces)
                    elif isinstance(request, ExportLogsServiceRequest):
                        normalize_logs(request, rows.logs)
                    elif isinstance(request, ExportMetricsServiceRequest):
                        normalize_metrics(request, rows.metrics)
            except Exception:  # a bug here must not take the writer down with it
                log.exception(
                    "could not normalize a %s record of segment %d; it is skipped",
                    signal,
                    segment.seq,
                )
        with stage("correlate + link"):
            try:
                traces = rows.traces
                traces.llm_calls = _once(rows, first_copies(traces.llm_calls), traces.llm_calls)
                traces.tool_calls = _once(rows, first_copies(traces.tool_calls), traces.tool_calls)
                spans = first_copies(traces.spans)  # each copy would take the call's figures
                if len(spans) < len(traces.spans):  # so would otel_traces: a span written twice
                    kept = first_copies(traces.traces, _TRACE_KEY)
                    traces.traces = _once(rows, kept, traces.traces)
                traces.spans = spans
                rows.traces.llm_calls = merge_stacked_calls(rows.traces.llm_calls)
                rows.llm_messages = attach_log_messages(rows.traces.llm_calls, rows.logs)
            except Exception:
                log.exception("could not correlate the LLM calls of segment %d", segment.seq)
            try:
                rows.traces.link(full_content=self.settings.trace_content == "full")
            except Exception:
                log.exception("could not link the agent spans of segment %d", segment.seq)
            try:
                rows.scores = evaluation_scores(rows.traces.traces, rows.logs)
            except Exception:
                log.exception("could not read the evaluation results of segment %d", segment.seq)
        rows.traces.traces = self._kept_spans(rows.traces.traces)
        return rows

    def _kept_spans(self, spans: list[TraceRow]) -> list[TraceRow]:
        """The spans `otel_traces` keeps. Where it keeps spans for less time than `llm_calls`
        keeps calls, the receivers take an LLM call older than `otel_traces` keeps, for its
        `llm_calls` row (receivers/validation.py): its span row is left out, which the table's
        TTL would drop as it is inserted, and so is not counted as written."""
        oldest = self.oldest_kept("traces")
        oldest_span = oldest.get(TraceRow.table, 0)
        if oldest_span <= oldest.get(LlmCallRow.table, 0):
            return spans  # the receivers refused every span older than otel_traces keeps
        return [span for span in spans if span.Timestamp >= oldest_span]

    def _write(self, segment: Segment) -> bool:
        """Normalize and store one segment in this thread (benchmarks, tests)."""
        return self._store(segment, self._rows(segment))

    def _store(
        self,
        segment: Segment,
        rows: _Rows,
        done_ahead: dict[str, Inserted] | None = None,
        uncertain: bool = False,
    ) -> bool:
        """Store a segment's rows (but the tables in `done_ahead`, stored already); False when
        shutting down with the store failing. `uncertain`: an insert of its rows failed before,
        so what the store holds of them is counted."""
        tables: list[tuple[str, list[Any]]] = []
        looked_up = False  # the store was asked which of the calls and tool calls it holds
        done: dict[str, Inserted] = dict(done_ahead or {})  # by table, over the attempts
        refused: dict[str, list[range]] = {}  # rows dead-lettered, by table
        # Rows an insert that failed stored all the same (its reply was lost), by table, where
        # the store counted them: the retry finds them there, and they are this run's writes.
        landed: dict[str, int] = {}
        delay = self.settings.retry_initial
        attempt = 0
        while True:
            started = time.perf_counter()
            attempt += 1
            counted: dict[str, int] = {}  # new rows by table, counted once for the batch
            try:
                # A segment's first attempt in the run that spooled it sends tokens the store
                # has never seen: nothing of it can be a duplicate, so nothing is counted.
                first_time = attempt == 1 and not segment.replayed and not uncertain
                if not looked_up:
                    # Once, before the first attempt: a retry would find the rows its failed
                    # attempt stored.
                    self._leave_out_resent(segment, rows)
                    looked_up = True
                    tables = rows.tables()
                with self.store.counting(counted, first_time=first_time):
                    for table, table_rows in tables:
                        if table not in done:  # a retry redoes only what failed
                            done[table], refused[table] = self._store_rows(
                                f"{segment.token}-{table}", table, table_rows
                            )
                _with_counts(done, counted)
                break
            except (StoreError, DeadLetterFull) as exc:
                _with_counts(done, counted)
                for table, new in counted.items():
                    if table not in done:
                        landed[table] = landed.get(table, 0) + new
                self._write_failed(exc)
                if self._stopping.is_set() and (attempt >= 3 or self._out_of_time()):
                    log.error(
                        "store still failing at shutdown; segment %d stays spooled: %s",
                        segment.seq,
                        exc,
                    )
                    return False
                wait = min(delay, self.settings.retry_max) * (0.5 + random.random())
                log.warning(
                    "store write failed (attempt %d), retrying in %.1fs: %s", attempt, wait, exc
                )
                self._stopping.wait(wait)
                delay *= 2
        written = {table: _written(segment, table, r, landed) for table, r in done.items()}
        if rows.stored_copies and TraceRow.table in written:
            # Stored, but copies of spans the store had: not new rows (so `_count` counts them
            # as deduplicated).
            spans_written = written[TraceRow.table]
            written[TraceRow.table] = spans_written - min(rows.stored_copies, spans_written)
        self._count(segment, done, written, rows.metrics.skipped_points, rows.resent)
        took_ms = (time.perf_counter() - started) * 1000.0
        with self.stats.lock:
            self.stats.last_write_ok = time.time()
            self.stats.write_failing_since = 0.0
            self.stats.write_ms_total += took_ms
            self.stats.write_ms_max = max(self.stats.write_ms_max, took_ms)
            self.stats.write_ms_interval_max = max(self.stats.write_ms_interval_max, took_ms)
        calls, calls_written = done.get(LlmCallRow.table), written.get(LlmCallRow.table, 0)
        if self.evaluation is not None and calls is not None and calls_written != 0:
            if calls_written == calls.rows:
                stored = _without(rows.traces.llm_calls, refused.get(LlmCallRow.table, []))
                try:  # only stored calls are evaluated; a bug there must not stop the writer
                    with stage("online evaluation offer"):
                        self.evaluation.offer(stored)
                except Exception:
                    log.exception("could not queue online evaluations of segment %d", segment.seq)
            else:  # which calls are new is not known: none is evaluated twice
                log.info(
                    "segment %d: %d of %d LLM calls were stored before; none is evaluated again",
                    segment.seq,
                    calls.rows - calls_written,
                    calls.rows,
                )
        return True

    def _leave_out_resent(self, segment: Segment, rows: _Rows) -> None:
        """Leave out of the segment the calls and tool calls other segments stored (a client
        sent their spans again: collector/resent.py), and their messages; count them. A replay
        leaves out what its first attempt did, as the spool kept it: what the store holds now
        may be the segment's own rows."""
        traces = rows.traces
        resent = self.spool.resent_spans(segment) if segment.replayed else None
        if resent is None:
            with stage("look up resent calls"):
                resent = {
                    LlmCallRow.table: stored_spans(self.store, traces.llm_calls),
                    ToolCallRow.table: stored_spans(self.store, traces.tool_calls),
                }
                if traces.llm_calls or traces.tool_calls:  # else a replay has none to look up
                    self.spool.record_resent(segment, resent)
        found = [span for spans in resent.values() for span in spans]
        if found:
            copies = set(found)
            rows.stored_copies = sum((t.TraceId, t.SpanId) in copies for t in traces.traces)
        calls = _once(
            rows,
            without_spans(traces.llm_calls, resent.get(LlmCallRow.table, [])),
            traces.llm_calls,
        )
        tools = _once(
            rows,
            without_spans(traces.tool_calls, resent.get(ToolCallRow.table, [])),
            traces.tool_calls,
        )
        if len(calls) < len(traces.llm_calls):
            kept = {(call.trace_id, call.span_id) for call in calls}
            rows.llm_messages = [m for m in rows.llm_messages if (m.trace_id, m.span_id) in kept]
        traces.llm_calls, traces.tool_calls = calls, tools

    def _write_failed(self, exc: Exception) -> None:
        with self.stats.lock:
            self.stats.write_failures += 1
            self.stats.last_write_error = str(exc)[:500]
            # A value the store cannot hold is the batch's fault, not the store's: the writer
            # isolates it (and dead-letters it), and the store takes the rest.
            if not self.stats.write_failing_since and not isinstance(exc, DataError):
                self.stats.write_failing_since = time.time()

    def _store_rows(
        self, token: str, table: str, rows: list[Any], attempts: int = 1, entry_id: str = ""
    ) -> tuple[Inserted, list[range]]:
        """Store one table's rows of a batch; what the store refuses for its values goes to the
        dead-letter folder as the entry `entry_id` (default: the token), and its ranges are
        returned with what the store did. Raises StoreError (or DeadLetterFull) when the batch
        must be tried again.

        `token` names the batch and the table: the same on every retry and replay of a segment
        (the store then drops what already landed), and never used by another segment. A
        piece of a split batch has the token of its rows' range, as stable as the batch's."""
        failed: list[tuple[range, str]] = []
        budget = [SPLIT_BUDGET]
        stored = self._isolate(token, table, rows, range(len(rows)), failed, budget)
        if failed:
            self._dead_letter(entry_id or token, table, rows, failed, attempts)
        return stored, [part for part, _ in failed]

    def _isolate(
        self,
        token: str,
        table: str,
        rows: list[Any],
        part: range,
        failed: list[tuple[range, str]],
        budget: list[int],
    ) -> Inserted:
        whole = len(part) == len(rows)
        try:
            return self.store.insert_rows(
                rows if whole else rows[part.start : part.stop],
                dedup_token=token if whole else f"{token}-{part.start}-{part.stop}",
            )
        except DataError as exc:
            if self.deadletter is None:
                raise
            if not self.store.ping():  # a store going away can fail in odd ways: wait for it
                raise StoreError(f"{exc} (and the store does not answer)") from exc
            budget[0] -= 1
            if len(part) == 1 or budget[0] <= 0:
                failed.append((part, str(exc)))
                return Inserted(0, 0)
            middle = part.start + len(part) // 2
            first = self._isolate(token, table, rows, part[: middle - part.start], failed, budget)
            second = self._isolate(token, table, rows, part[middle - part.start :], failed, budget)
            new = None if first.new is None or second.new is None else first.new + second.new
            return Inserted(first.rows + second.rows, new)

    def _dead_letter(
        self,
        entry_id: str,
        table: str,
        rows: list[Any],
        failed: list[tuple[range, str]],
        attempts: int,
    ) -> None:
        assert self.deadletter is not None
        values = [to_values(rows[i]) for part, _ in failed for i in part]
        errors = list(dict.fromkeys(error for _, error in failed))
        error = errors[0] if len(errors) == 1 else " | ".join(errors[:5])
        self.deadletter.add(
            entry_id, table, column_names(type(rows[0])), values, error, attempts=attempts
        )
        self.stats.add(deadlettered_batches=1, deadlettered_rows=len(values))
        log.error(
            "the store refused %d %s row(s) for their values; they are in the dead-letter "
            "folder as %s (assay deadletter show %s): %s",
            len(values),
            table,
            entry_id,
            entry_id,
            error[:300],
        )

    def _retry_dead_letters(self) -> None:
        """Insert again the dead-letter entries someone asked to retry (assay deadletter
        retry); what the store refuses again goes back to the folder."""
        now = time.monotonic()
        if self.deadletter is None or now - self._retries_checked < RETRY_SCAN_INTERVAL:
            return
        self._retries_checked = now
        for entry_id in self.deadletter.retries():
            entry = self.deadletter.take_retry(entry_id)
            if entry is None:
                continue
            try:
                row_type = WRITTEN_ROWS[entry.table]
                rows = [from_values(row_type, entry.columns, values) for values in entry.rows]
            except (KeyError, TypeError, ValueError) as exc:
                self.deadletter.add(
                    entry.id,
                    entry.table,
                    entry.columns,
                    entry.rows,
                    f"cannot read the entry's rows as {entry.table} rows: {exc!r}",
                    attempts=entry.attempts + 1,
                )
                self.deadletter.retried(entry.id)
                continue
            try:
                if rows:
                    stored, _ = self._store_rows(
                        f"{entry.id}-r{entry.attempts}",
                        entry.table,
                        rows,
                        attempts=entry.attempts + 1,
                        entry_id=entry.id,
                    )
                    self.stats.add(deadletter_retried_rows=stored.rows)
            except (StoreError, DeadLetterFull) as exc:
                log.warning("dead-letter entry %s not retried yet: %s", entry.id, exc)
                self.deadletter.retry_later(entry.id)
                return  # it stays asked for; tried again later
            self.deadletter.retried(entry.id)

    def _count(
        self,
        segment: Segment,
        done: dict[str, Inserted],
        written: dict[str, int],
        skipped_points: int,
        resent: dict[str, int],
    ) -> None:
        """Written counts the rows this run stored (`_written`); the rest of what was sent, the
        store had already (a replayed segment), and is counted apart, by table, with the copies
        of resent spans left out before the insert."""
        deduplicated = {
            table: r.rows - written[table] for table, r in done.items() if r.rows > written[table]
        }
        for table, n in resent.items():
            deduplicated[table] = deduplicated.get(table, 0) + n
        if deduplicated:
            log.info(
                "segment %d (token %s): the store already had %s",
                segment.seq,
                segment.token,
                ", ".join(f"{n} {table} row(s)" for table, n in deduplicated.items()),
            )
        self.stats.add(
            segments_written=1,
            spans_written=written.get(TraceRow.table, 0),
            llm_calls_written=written.get(LlmCallRow.table, 0),
            logs_written=written.get(LogRow.table, 0),
            metric_points_written=sum(n for table, n in written.items() if table in _METRIC_TABLES),
            metric_points_skipped=skipped_points,
        )
        if deduplicated:
            with self.stats.lock:
                for table, n in deduplicated.items():
                    self.stats.deduplicated[table] = self.stats.deduplicated.get(table, 0) + n
