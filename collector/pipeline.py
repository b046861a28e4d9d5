"""The path from receivers to the store: a bounded queue and the batching writer behind it."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from assay.collector.normalize.logs import normalize_logs
from assay.collector.normalize.rows import LogRow, column_names, to_columns
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store, StoreError

log = logging.getLogger("assay.collector.pipeline")


class Overloaded(Exception):
    """The collector cannot take more right now; the client should retry after `retry_after` s."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class PipelineStats:
    requests_accepted: int = 0
    requests_refused: int = 0
    spans_received: int = 0
    logs_received: int = 0
    spans_written: int = 0
    llm_calls_written: int = 0
    logs_written: int = 0
    write_failures: int = 0
    last_write_error: str = ""
    last_write_ok: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in vars(self).items() if k != "lock"}


@dataclass
class _Pending:
    traces: TraceBatch = field(default_factory=TraceBatch)
    logs: list[LogRow] = field(default_factory=list)
    requests: int = 0

    def __len__(self) -> int:
        return len(self.traces.traces) + len(self.logs)


def _count_items(signal: str, request: Message) -> int:
    if signal == "traces":
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


_TICK: Any = object()  # "no new request within the flush interval"


class Pipeline:
    """Receivers `submit` decoded requests; one writer thread normalizes, batches and stores them.

    Memory is bounded by `max_queue_bytes` of encoded request size: past it, `submit` refuses
    with Overloaded, which receivers turn into the OTLP back-pressure signals.
    """

    def __init__(self, store: Store, settings: CollectorSettings) -> None:
        self.store = store
        self.settings = settings
        self.stats = PipelineStats()
        self._queue: queue.SimpleQueue[tuple[str, Message, int] | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="assay-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def submit(self, signal: str, request: Message, size: int) -> int:
        """Queue a decoded request; return the number of spans or log records in it."""
        items = _count_items(signal, request)
        with self._bytes_lock:
            if self._stopping:
                raise Overloaded("the collector is shutting down", retry_after=5)
            if self._queued_bytes + size > self.settings.max_queue_bytes:
                with self.stats.lock:
                    self.stats.requests_refused += 1
                raise Overloaded(
                    f"write queue full ({self._queued_bytes} bytes waiting for the store)",
                    retry_after=max(self.settings.flush_interval, 1.0),
                )
            self._queued_bytes += size
            self._idle.clear()
        with self.stats.lock:
            self.stats.requests_accepted += 1
            if signal == "traces":
                self.stats.spans_received += items
            else:
                self.stats.logs_received += items
        self._queue.put((signal, request, size))
        return items

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is stored (or `timeout` passes)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with self._bytes_lock:
            self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        pending, pending_bytes = _Pending(), 0
        deadline: float | None = None  # when the oldest pending request must be written
        stop = False
        while not stop:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = _TICK
            if item is None:
                stop = True
            elif item is not _TICK:
                signal, request, size = item
                self._normalize(signal, request, pending)
                pending_bytes += size
                if deadline is None:
                    deadline = time.monotonic() + self.settings.flush_interval
            due = deadline is not None and time.monotonic() >= deadline
            if pending.requests and (stop or due or len(pending) >= self.settings.batch_spans):
                self._write(pending)
                with self._bytes_lock:
                    self._queued_bytes -= pending_bytes
                    if self._queued_bytes == 0:
                        self._idle.set()
                pending, pending_bytes, deadline = _Pending(), 0, None

    def _normalize(self, signal: str, request: Message, pending: _Pending) -> None:
        pending.requests += 1
        try:
            if signal == "traces":
                normalize_traces(request, pending.traces)
            else:
                normalize_logs(request, pending.logs)
        except Exception:  # a bug here must not take the writer down with it
            log.exception("could not normalize a %s request; it is dropped", signal)

    def _write(self, pending: _Pending) -> None:
        batch_id = uuid.uuid4().hex
        tables: list[tuple[str, list[Any], type]] = []
        for rows in (pending.traces.traces, pending.traces.llm_calls, pending.logs):
            if rows:
                tables.append((rows[0].table, rows, type(rows[0])))
        delay = self.settings.retry_initial
        attempt = 0
        while True:
            attempt += 1
            try:
                for table, rows, row_type in tables:
                    # Same token on every attempt: a retry of a block that did land is a no-op.
                    self.store.insert(
                        table,
                        to_columns(rows),
                        column_names(row_type),
                        dedup_token=f"{batch_id}-{table}",
                    )
                break
            except StoreError as exc:
                with self.stats.lock:
                    self.stats.write_failures += 1
                    self.stats.last_write_error = str(exc)[:500]
                if self._stopping and attempt >= 3:
                    log.error(
                        "giving up on a batch at shutdown after %d attempts: %s", attempt, exc
                    )
                    return
                wait = min(delay, self.settings.retry_max) * (0.5 + random.random())
                log.warning(
                    "store write failed (attempt %d), retrying in %.1fs: %s", attempt, wait, exc
                )
                time.sleep(wait)
                delay *= 2
        with self.stats.lock:
            self.stats.spans_written += len(pending.traces.traces)
            self.stats.llm_calls_written += len(pending.traces.llm_calls)
            self.stats.logs_written += len(pending.logs)
            self.stats.last_write_ok = time.time()
