"""The collector watching itself: its counters into `collector_stats`, and the health verdict.

Every `stats_interval` seconds a thread pings the store and writes one `CollectorStatsRow`:
what happened during the interval (requests, refusals by reason, rows written, write time,
evaluations) and how things stand (spool size and age, evaluation queue, store reachable).
The same verdict answers `/api/health`: "ok"; "degraded" while the store is unreachable or
refuses writes (the spool holds the data) or the dead-letter folder holds rows the store refused
(until they are retried: `assay deadletter`); "unhealthy" when the spool is (nearly) full, its
disk refuses records, or the store has been unreachable or refusing writes for `unhealthy_after`
seconds — a load balancer should then send traffic elsewhere.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from assay.collector.background import Background
from assay.collector.pipeline import Pipeline
from assay.collector.schema import CollectorStatsRow
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store, StoreError

log = logging.getLogger("assay.collector.monitoring")

# collector_stats column → the pipeline counter it is the interval's increase of
PIPELINE_COUNTS = {
    "requests_accepted": "requests_accepted",
    "requests_refused": "requests_refused",
    "spans_received": "spans_received",
    "logs_received": "logs_received",
    "spans_written": "spans_written",
    "llm_calls_written": "llm_calls_written",
    "logs_written": "logs_written",
    "writes": "segments_written",
    "write_failures": "write_failures",
    "deadlettered_batches": "deadlettered_batches",
    "deadlettered_rows": "deadlettered_rows",
}
EVALUATION_COUNTS = {
    "evaluations": "evaluated",
    "evaluation_failures": "failed",
    "evaluation_drops": "dropped",
}
# The spool counts as full past this share of max_spool_bytes: the next requests are refused.
SPOOL_FULL = 0.9


def instance_name(settings: CollectorSettings, grpc_port: int) -> str:
    """What names a collector in collector_stats: the configured name, else host:grpc-port."""
    return settings.instance or f"{socket.gethostname()}:{grpc_port}"


def _by_key(delta: dict[str, Any], prefix: str) -> dict[str, int]:
    """The non-zero counts of one map counter (`prefix` + key) out of an interval's deltas."""
    return {
        key.removeprefix(prefix): int(n) for key, n in delta.items() if key.startswith(prefix) and n
    }


@dataclass(frozen=True)
class Verdict:
    status: str  # ok | degraded | unhealthy
    reasons: tuple[str, ...]

    @property
    def serving(self) -> bool:
        return self.status != "unhealthy"


class Monitor:
    """Samples the pipeline's counters; `start()` writes them to the store periodically."""

    def __init__(
        self, store: Store, pipeline: Pipeline, settings: CollectorSettings, version: str
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self.version = version
        self.host = socket.gethostname()
        self.instance = settings.instance or self.host
        self.started_at = time.time_ns()
        self._last: dict[str, int] = {}
        self._last_time = time.monotonic()
        self._store_down_since: float | None = None
        self._lock = threading.Lock()
        self._background = Background("assay-monitor", self._run)

    # --- health -----------------------------------------------------------------------------
    def observe_store(self, reachable: bool) -> None:
        with self._lock:
            if reachable:
                self._store_down_since = None
            elif self._store_down_since is None:
                self._store_down_since = time.monotonic()

    def verdict(self) -> Verdict:
        unhealthy: list[str] = []  # traffic should go elsewhere
        degraded: list[str] = []  # still taking traffic, but something needs a look
        self.pipeline.spool.probe_disk()
        spool = self.pipeline.spool.stats()
        if spool.disk_failing_since:  # every request is refused until the disk takes records
            unhealthy.append(
                f"the spool's disk refuses records ({spool.disk_error}): requests are refused"
            )
        if spool.bytes >= SPOOL_FULL * self.settings.max_spool_bytes:
            unhealthy.append(
                f"spool full: {spool.bytes} of {self.settings.max_spool_bytes} bytes waiting"
            )
        with self._lock:
            down_since = self._store_down_since
        if down_since is not None:
            down_for = time.monotonic() - down_since
            self._judge(f"store unreachable for {down_for:.0f} s", down_for, unhealthy, degraded)
        else:  # reachable, yet refusing writes: a full disk, a read-only table, a lost quota
            with self.pipeline.stats.lock:
                failing_since = self.pipeline.stats.write_failing_since
                error = self.pipeline.stats.last_write_error
            if failing_since:
                failing_for = max(time.time() - failing_since, 0.0)
                self._judge(
                    f"store writes failing for {failing_for:.0f} s ({error})",
                    failing_for,
                    unhealthy,
                    degraded,
                )
        deadletter = self.pipeline.deadletter
        waiting = deadletter.stats().entries if deadletter is not None else 0
        if waiting:
            degraded.append(
                f"{waiting} batch(es) of rows the store refused are in the dead-letter "
                f"folder {deadletter.folder} (assay deadletter list)"  # type: ignore[union-attr]
            )
        if unhealthy:
            return Verdict("unhealthy", tuple(unhealthy + degraded))
        return Verdict("degraded", tuple(degraded)) if degraded else Verdict("ok", ())

    def _judge(self, reason: str, lasted: float, unhealthy: list[str], degraded: list[str]) -> None:
        """The store not taking data: degraded (the spool holds it) until `unhealthy_after`."""
        (unhealthy if lasted >= self.settings.unhealthy_after else degraded).append(reason)

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, store_reachable: bool) -> CollectorStatsRow:
        """The row for the interval since the previous sample."""
        stats = self.pipeline.stats
        counts = stats.snapshot()
        with stats.lock:  # the interval's slowest write; the next interval starts from zero
            write_max = stats.write_ms_interval_max
            stats.write_ms_interval_max = 0.0
        evaluation = self.pipeline.evaluation.snapshot() if self.pipeline.evaluation else {}
        now: dict[str, Any] = {
            **{column: counts[field] for column, field in PIPELINE_COUNTS.items()},
            **{column: evaluation.get(field, 0) for column, field in EVALUATION_COUNTS.items()},
            **{f"refused.{reason}": n for reason, n in counts["refused"].items()},
            **{f"deduplicated.{table}": n for table, n in counts["deduplicated"].items()},
            "write_ms_total": counts["write_ms_total"],
        }
        delta = {key: value - self._last.get(key, 0) for key, value in now.items()}
        self._last = now
        interval = time.monotonic() - self._last_time
        self._last_time += interval
        spool = self.pipeline.spool.stats()
        writes = delta["writes"]
        return CollectorStatsRow(
            timestamp=time.time_ns(),
            instance=self.instance,
            host=self.host,
            version=self.version,
            started_at=self.started_at,
            interval_s=interval,
            status=self.verdict().status,
            store_reachable=store_reachable,
            refused=_by_key(delta, "refused."),
            deduplicated=_by_key(delta, "deduplicated."),
            write_ms_avg=delta["write_ms_total"] / writes if writes else None,
            write_ms_max=write_max if writes else None,
            spool_bytes=spool.bytes,
            spool_segments=spool.segments,
            spool_oldest_age_s=spool.oldest_age_s,
            evaluation_queue=evaluation.get("queue_depth", 0),
            deadletter_entries=(
                self.pipeline.deadletter.stats().entries if self.pipeline.deadletter else 0
            ),
            **{column: int(delta[column]) for column in (*PIPELINE_COUNTS, *EVALUATION_COUNTS)},
        )

    def record(self) -> CollectorStatsRow:
        """Ping the store, sample, and write the row (a failed write is only logged: the
        counters are also in /api/health, and the store being down is what they show)."""
        reachable = self.store.ping()
        self.observe_store(reachable)
        row = self.sample(reachable)
        if reachable:
            try:
                self.store.insert_rows([row])
            except StoreError as exc:
                log.debug("could not record collector stats: %s", exc)
        return row

    def start(self, grpc_port: int | None = None) -> None:
        """Start sampling; without a configured instance name, this one is host:grpc-port."""
        if grpc_port is not None:
            self.instance = instance_name(self.settings, grpc_port)
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    def _run(self) -> None:
        while not self._background.stopping.wait(self.settings.stats_interval):
            try:
                self.record()
            except Exception:  # watching must never take the collector down
                log.exception("self-monitoring sample failed")
        try:
            self.record()  # the last interval, up to the shutdown
        except Exception:
            log.exception("self-monitoring: the last sample failed")
