"""Completed runs: a thread that writes the summary of every run that became complete into
`completed_runs` (migration 015), one plain row per run for the Agents dashboard and the
sessions list to read instead of merging the partial states of `trace_summaries`.

A run is complete as for run-level evaluation (collector/evaluation/runs.py): its root span has
arrived and the store has received no span of it for `run_quiet_period` seconds
(`trace_summary.updated_at`, the store's clock). Each look writes, in one INSERT ... SELECT the
store runs by itself, the runs whose newest span arrived between the previous look's bound and
`now - run_quiet_period`, where `now` stays before every insert into trace_spans still running
(`Store.visible_until_ms`: what it stores is stamped before it can be read); a run still
receiving spans is left for a later look, and a late span makes its run complete again later,
so it is written again (the newer row replaces the older). The first look after a start begins
at the newest row written (all runs, on a store that has none yet). Several collectors on one
store write the same rows: the table keeps one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from assay.collector.background import Background
from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.schema import RUN_SUMMARY_COLUMNS, TraceSpanRow
from assay.collector.stage_timing import stage
from assay.collector.store.base import Store

log = logging.getLogger("assay.collector.completed_runs")


def write_completed(store: Store, since_ms: int, until_ms: int) -> None:
    """Write the runs whose newest span arrived in (since_ms, until_ms] (Unix milliseconds, the
    store's clock) and whose root span has arrived."""
    db = store.database
    columns = ", ".join(RUN_SUMMARY_COLUMNS)
    with stage("completed runs: write"):
        store.query(
            f"INSERT INTO {db}.completed_runs (hour, {columns}) "
            f"SELECT toStartOfHour(start) AS hour, {columns} FROM {db}.trace_summary "
            f"WHERE trace_id IN (SELECT trace_id FROM {db}.trace_summaries "
            "WHERE updated_at > fromUnixTimestamp64Milli({since:Int64}) "
            "AND updated_at <= fromUnixTimestamp64Milli({until:Int64})) "
            "AND has_root AND updated_at <= fromUnixTimestamp64Milli({until:Int64})",
            {"since": since_ms, "until": until_ms},
        )


def newest_written_ms(store: Store) -> int:
    """The `updated_at` of the newest run written (Unix milliseconds; 0 when none is)."""
    _, [[newest]] = store.query(
        f"SELECT toUnixTimestamp64Milli(max(updated_at)) FROM {store.database}.completed_runs"
    )
    return int(newest)


def write_all_completed(store: Store) -> None:
    """Every run not written yet whose root has arrived, as if each were quiet already (a store
    loaded by hand: benchmarks, tests)."""
    write_completed(store, newest_written_ms(store), store.visible_until_ms(TraceSpanRow.table))


@dataclass
class CompletedRuns:
    """The thread that writes completed runs every `run_poll_interval` seconds."""

    config: EvaluationConfig
    store: Store
    looks: int = 0
    failures: int = 0
    _since_ms: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.background = Background("assay-completed-runs", self._run)

    def start(self) -> None:
        self.background.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.background.stop(timeout)

    def _run(self) -> None:
        while not self.background.stopping.is_set():
            try:
                self.look()
            except Exception as exc:  # the store down: the next look starts where this one did
                self.failures += 1
                log.warning("writing completed runs failed; trying again: %s", exc)
            self.background.stopping.wait(self.config.run_poll_interval)

    def look(self) -> None:
        """Write the runs that became complete since the last look."""
        if self._since_ms is None:
            self._since_ms = newest_written_ms(self.store)
        quiet_ms = int(self.config.run_quiet_period * 1000)
        until = self.store.visible_until_ms(TraceSpanRow.table) - quiet_ms
        if until <= self._since_ms:
            return
        write_completed(self.store, self._since_ms, until)
        self._since_ms = until
        self.looks += 1
