"""Sending the batched spans within a time bound: on demand, at exit, and as a forked child exits.

The SDK's batch processor ignores the timeout of its `force_flush` (opentelemetry-python #4568)
and blocks until every queued batch has been tried: against a collector that is down, each
batch of 512 spans waits out the exporter's retries (7 s while the port refuses connections,
the whole 10 s `OTEL_EXPORTER_OTLP_TIMEOUT` while nothing answers), so a script with 2,000
spans queued took 28 s to exit. Here each wait is bounded: the flush runs in a helper thread
that the caller waits for at most its timeout, and at exit the processor Assay added is shut
down with a timeout, which stops its exporter's retries once the time is spent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

logger = logging.getLogger("assay.instrumentation")


class _Flush:
    """One flush running in its own thread; what it returned once it has."""

    def __init__(self, flush: Callable[[], object]) -> None:
        self.result = False
        self.thread = threading.Thread(target=self._run, args=(flush,), name="AssayFlush")
        # A daemon: a flush still blocked on a collector that does not answer must not keep the
        # interpreter from exiting.
        self.thread.daemon = True
        self.thread.start()

    def _run(self, flush: Callable[[], object]) -> None:
        self.result = bool(flush())


# How long the exit waits for an export its exporter's shutdown cut, to count its spans.
_CUT_EXPORT_S = 0.5

_running: _Flush | None = None
_running_lock = threading.Lock()


def flush_within(flush: Callable[[], object], timeout_s: float) -> bool:
    """Run `flush` (a provider's `force_flush`) and wait at most `timeout_s` for it.

    True if it finished in time and said it succeeded. A flush that is still running when
    another is asked for is waited for again rather than doubled: against a collector that is
    down, a flush after every request would otherwise pile up threads queued on the processor's
    export lock.
    """
    global _running
    with _running_lock:
        if _running is None or not _running.thread.is_alive():
            _running = _Flush(flush)
        running = _running
    running.thread.join(max(timeout_s, 0.0))
    return not running.thread.is_alive() and running.result


def shutdown_within(processor: BatchSpanProcessor, timeout_s: float) -> int:
    """Shut `processor` down, exporting what it holds for at most `timeout_s`; spans left unsent.

    `BatchSpanProcessor.shutdown()` takes no timeout and waits 30 s for its thread; the batch
    processor inside it takes one, joins its thread for that long, then shuts the exporter down,
    which ends the retry in progress (the gRPC channel is closed, the HTTP retry wait is cut).
    Spans still queued then are dropped, and so are those of the export that was cut and of
    batches kept for a collector that did not come back: how many is returned.
    """
    batch = getattr(processor, "_batch_processor", None)
    shutdown = getattr(batch, "shutdown", None)
    if shutdown is None:  # another SDK version: a bounded flush, the SDK's own shutdown after it
        flush_within(processor.force_flush, timeout_s)
        return 0
    exporter = processor.span_exporter
    unsent = getattr(exporter, "unsent", None)
    if unsent is not None:
        exporter.warn_at_shutdown = False  # counted below
    shutdown(timeout_millis=max(timeout_s, 0.0) * 1000)
    worker = getattr(batch, "_worker_thread", None)
    if worker is not None:  # the export cut by the exporter's shutdown ends now: let it count
        worker.join(_CUT_EXPORT_S)
    return len(getattr(batch, "_queue", ())) + (unsent() if unsent is not None else 0)


_child_flush: Callable[[], None] | None = None
_child_flush_pid = 0


def flush_as_forked_children_exit(flush: Callable[[], None]) -> None:
    """Run `flush` when a `multiprocessing` child forked from this process exits.

    A child of `multiprocessing` (a `Pool` worker, a `Process`) leaves through `os._exit`
    without running `atexit`, so the spans of its last seconds were never sent.
    multiprocessing runs its own finalizers as such a child exits; their registry is emptied as
    the child starts, then its after-fork callbacks run: one of them registers the flush anew in
    each child. A Celery prefork worker (billiard) runs neither, and sends Celery's
    `worker_process_shutdown` as it leaves: the flush is connected to it.
    """
    global _child_flush
    first = _child_flush is None
    _child_flush = flush
    if first and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    if first:
        import wrapt  # not at import: `import assay.instrumentation` stays light

        # Celery's prefork pool forks through billiard, which runs neither: its workers send
        # `worker_process_shutdown` just before their `os._exit` (imported or not yet).
        wrapt.register_post_import_hook(_flush_as_celery_workers_exit, "celery.signals")


def _flush_as_celery_workers_exit(signals: ModuleType) -> None:
    try:
        # Strongly held (Celery's signals keep weak references by default: a receiver nobody
        # else holds, such as a lambda, is dropped at once and never runs); once per process.
        signals.worker_process_shutdown.connect(
            _flush_celery_worker, weak=False, dispatch_uid="assay.instrumentation.flush"
        )
    except Exception:  # another Celery: its workers' last spans may be lost, the app runs on
        logger.warning("Assay could not connect to Celery's worker_process_shutdown", exc_info=True)


def _flush_celery_worker(**kwargs: object) -> None:
    if _child_flush is not None:
        _child_flush()


class _Registrant:
    """The object multiprocessing keeps a weak reference to for an after-fork callback."""


_REGISTRANT = _Registrant()


def _after_fork_in_child() -> None:
    # A forking server's children (gunicorn) leave through `sys.exit` and run `atexit`; only
    # multiprocessing's own children need this, and a process that forks through multiprocessing
    # has imported it already.
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(_REGISTRANT, _register_child_finalizer)


def _register_child_finalizer(_registrant: object) -> None:
    global _child_flush_pid
    util = sys.modules.get("multiprocessing.util")
    if util is None or _child_flush is None or _child_flush_pid == os.getpid():
        return  # once per process, however many forks registered the callback on the way
    _child_flush_pid = os.getpid()
    util.Finalize(None, _child_flush, exitpriority=10)
