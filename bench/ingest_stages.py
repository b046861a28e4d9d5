"""The ingest path stage by stage, in this process: what each stage costs per span.

The collector's own code runs here, one request after the other, without gRPC: `decode_protobuf`,
then the receivers' `take` (validate, redact, spool append + fsync), and the writer's `_write`
of each sealed segment (decode, normalize, correlate + link, build columns, insert per table,
online evaluation offer), with `assay.collector.stage_timing` on. CPU time is the process's
(every thread's, the store's included), so the figures hold on a loaded machine better than
wall time does. Segments are sealed by size only (8 MiB, the default), as they are under load.

The cost of the materialized views is measured apart: the same batches inserted again into the
table and into a copy of it without views (`CREATE TABLE ... AS`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assay.collector import price_tables
from assay.collector.deadletter import DeadLetter
from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.online import OnlineEvaluation
from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.pipeline import Pipeline, tune_gc
from assay.collector.receivers.intake import take
from assay.collector.redaction import BUILTIN_PATTERNS
from assay.collector.retention import kept_seconds
from assay.collector.service import open_spool
from assay.collector.settings import CollectorSettings, deadletter_folder
from assay.collector.stage_timing import StageTimes, measure
from assay.collector.store import open_store
from assay.collector.store.base import ClickHouseStore

# Five heuristic evaluators on every call (bench/evaluators.py runs the same).
RULES = """\
evaluation:
  rules:
    - evaluators:
        - json_valid
        - no_pii
        - no_refusal
        - length: {max_chars: 4000}
        - contains_any: {texts: [refund, invoice], ignore_case: true}
"""
VIEW_TABLES = ("otel_traces", "llm_calls", "trace_spans")
ENGINE_STAGES = {
    "count new rows"
}  # with every "insert <table>": the engine's own work  # the tables views read from
VIEW_SAMPLE_SPANS = 10_000  # the batches re-inserted to price the views


@dataclass
class StageRun:
    spans: int
    times: StageTimes
    views: dict[str, tuple[float, float, int]]  # table: CPU s with views, without, rows
    evaluation: bool
    redaction: bool


def _capture(store: ClickHouseStore, batches: list[tuple[str, Any, Any]], limit: int) -> Any:
    """Keep the first batches the writer inserts into the tables with views (to insert again);
    returns the store's own insert, to put back."""
    insert = store.insert
    kept: dict[str, int] = {}

    def recording(table: str, columns: Any, names: Any, dedup_token: str | None = None) -> Any:
        if table in VIEW_TABLES and kept.get(table, 0) < limit:
            kept[table] = kept.get(table, 0) + len(columns[0])
            batches.append((table, columns, names))
        return insert(table, columns, names, dedup_token=dedup_token)

    store.insert = recording  # type: ignore[method-assign]
    return insert


def _price_views(store: ClickHouseStore, batches: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    db = store.database
    for table in VIEW_TABLES:
        store.command(f"CREATE TABLE {db}.bench_{table} AS {db}.{table}")
    out: dict[str, list[float]] = {table: [0.0, 0.0, 0] for table in VIEW_TABLES}
    for n, (table, columns, names) in enumerate(batches):
        for target, slot in ((table, 0), (f"bench_{table}", 1)):
            cpu = time.process_time()
            store.insert(target, columns, names, dedup_token=f"bench-views-{n}-{target}")
            out[table][slot] += time.process_time() - cpu
        out[table][2] += len(columns[0])
    return {table: tuple(v) for table, v in out.items() if v[2]}


def run_stages(
    bodies: list[bytes], spans: int, evaluation: bool = True, redaction: bool = True
) -> StageRun:
    """Every request through the collector's ingest path in this process, stage by stage."""
    tune_gc()  # as `assay collector` does: this process stands for the collector's
    with tempfile.TemporaryDirectory() as tmp:
        settings = CollectorSettings(
            storage=Path(tmp) / "data",
            flush_interval=3600,  # sealed by size only
            redact=list(BUILTIN_PATTERNS) if redaction else [],
        )
        store = open_store(settings.store)
        spool = open_spool(settings)
        try:
            store.migrate()
            price_tables.activate_from_store(store)
            # Not started: the offer is the ingest path's part; scoring runs on its own thread.
            # Nothing takes the offered evaluations, so the queue holds them all (the default
            # 10,000 would drop the oldest, and log it, as a collector whose evaluation cannot
            # keep up does: not what this run is about).
            config = EvaluationConfig.model_validate(
                {**(yaml.safe_load(RULES)["evaluation"] if evaluation else {}), "queue_size": 10**7}
            )
            online = OnlineEvaluation(config, store)
            deadletter = DeadLetter(deadletter_folder(settings), settings.max_deadletter_bytes)
            # The bound the collector's receivers check records against (service.py).
            kept = kept_seconds(store, store.cluster)
            pipeline = Pipeline(store, spool, settings, online, deadletter, kept)
            batches: list[tuple[str, Any, Any]] = []
            insert = _capture(store, batches, VIEW_SAMPLE_SPANS)
            loop = asyncio.new_event_loop()

            def drain(seal: bool) -> None:
                if seal:
                    spool.seal()
                while (segment := spool.next_segment(timeout=0)) is not None:
                    assert pipeline._write(segment)
                    spool.release(segment)

            with measure() as times:
                for body in bodies:
                    with times.time("decode"):
                        request = decode_protobuf("traces", body)
                    loop.run_until_complete(take(pipeline, "traces", request, body))
                    drain(seal=False)
                drain(seal=True)
            loop.close()
            stats = pipeline.stats.snapshot()
            if stats["spans_written"] != spans or stats["llm_calls_written"] not in (0, spans):
                raise RuntimeError(
                    f"{stats['spans_written']} spans and {stats['llm_calls_written']} LLM calls "
                    f"stored of {spans}"
                )
            store.insert = insert  # type: ignore[method-assign]
            views = _price_views(store, batches)
        finally:
            spool.close()
            store.close()
    return StageRun(spans, times, views, evaluation, redaction)


def print_stages(run: StageRun, kind: str = "LLM") -> float:
    """The per-stage table; returns the spans/s the stages' CPU time allows one process."""
    times = run.times
    total_cpu = sum(times.cpu.values())
    print(
        f"  per-stage cost, {run.spans} {kind} spans in-process (redaction "
        f"{'on' if run.redaction else 'off'}, online evaluation "
        f"{'5 heuristic evaluators' if run.evaluation else 'off'}, disk spool with fsync)"
    )
    print(f"    {'stage':30} {'CPU µs/span':>12} {'wall µs/span':>13} {'share':>6}")
    for name, cpu in times.cpu.items():
        print(
            f"    {name:30} {cpu / run.spans * 1e6:12.1f} "
            f"{times.wall[name] / run.spans * 1e6:13.1f} {cpu / total_cpu:6.1%}"
        )
    print(
        f"    {'all stages':30} {total_cpu / run.spans * 1e6:12.1f} "
        f"{sum(times.wall.values()) / run.spans * 1e6:13.1f}"
    )
    for table, (with_views, without, rows) in run.views.items():
        print(
            f"    {'  of which views of ' + table:30} "
            f"{(with_views - without) / rows * 1e6:12.1f}"
            f"   (insert {with_views / rows * 1e6:.1f} with, {without / rows * 1e6:.1f} without;"
            f" {rows} rows)"
        )
    print(
        f"    {'  of which garbage collection':30} {times.gc_cpu / run.spans * 1e6:12.1f}"
        f"   ({times.gc_runs} collections)"
    )
    pace = run.spans / total_cpu
    print(f"    {'one process at this CPU cost':30} {pace:12.0f} spans/s")
    # The writer's inserts run in the engine, off Python's lock, while the reader normalizes
    # the next segment and the receivers take requests (collector/pipeline.py): with a core
    # for each side, the slower side sets the pace.
    engine = sum(
        cpu
        for name, cpu in times.cpu.items()
        if name in ENGINE_STAGES or name.startswith("insert ")
    )
    python = total_cpu - engine
    print(
        f"    {'  in the engine (inserts, count)':30} {engine / run.spans * 1e6:12.1f}"
        f"   (Python's encoding of the inserts included)"
    )
    locked = "  under Python's lock (the rest)"
    print(f"    {locked:30} {python / run.spans * 1e6:12.1f}")
    print(
        f"    {'the two sides overlapping':30} {run.spans / max(engine, python):12.0f} spans/s"
        f"   (one core each)"
    )
    return pace
