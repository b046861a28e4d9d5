"""The writer's insert stage taken apart: where the CPU of storing an LLM span's rows goes.

    .venv/bin/python bench/ingest_insert.py [--spans 2200] [--rounds 5] [--sizes 2200,4400]

Rows: `bench/ingest.py`'s LLM spans normalized as the reader does, one segment's worth (8 MiB
of OTLP holds about 2,200 of them), into an embedded store of its own. Per table the writer
fills (`otel_traces`, `llm_calls`, `trace_spans`), CPU µs per span, medians of `--rounds`
rounds interleaved, background merges stopped (they run on other threads, priced in part 3):

1. Python's side, thread CPU: `build columns` (`insert_arguments`) and the Native encoding
   (clickhouse-connect's `build_insert`, as `client.insert` does before it hands the bytes to
   chDB). The engine's side, process CPU of `INSERT ... FROM INFILE ... FORMAT Native` of
   those bytes (what clickhouse-connect's chDB backend sends): into a `Null` copy of the table
   (parsing, the insert's own planning), into a MergeTree copy without views (the part
   written), into the table itself (its views too).
2. The fixed cost of an insert: the same three targets, one row an insert, CPU ms each.
3. The engine's CPU by insert size, merges included: the same rows (8,800 spans' worth,
   twice) inserted `size` spans at a time into a fresh store in a process of its own, then 8 s
   idle, then `OPTIMIZE ... FINAL` of every table: what the inserts cost, what the merges left
   afterwards, and a full merge (an upper bound of the merging still owed).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clickhouse_connect.driver.transform import NativeTransform
from ingest import build_requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.pipeline import tune_gc
from assay.collector.schema import insert_arguments
from assay.collector.store.base import INSERT_SETTINGS
from assay.collector.store.embedded import EmbeddedStore

TABLES = ("otel_traces", "llm_calls", "trace_spans")
SIZE_SPANS = 8_800  # part 3: the rows built once, inserted twice at every size


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _batch(spans: int) -> dict[str, list[Any]]:
    batch = TraceBatch()
    for body in build_requests(spans, 50):
        normalize_traces(ExportTraceServiceRequest.FromString(body), batch)
    batch.llm_calls = merge_stacked_calls(batch.llm_calls)
    batch.link()
    return dict(zip(TABLES, (batch.traces, batch.llm_calls, batch.spans), strict=True))


class _Engine:
    """An embedded store, and Native bytes inserted into it as clickhouse-connect's chDB
    backend does (a file, `FROM INFILE`), with the store's insert settings."""

    def __init__(self, folder: Path) -> None:
        self.store = EmbeddedStore(folder / "data", "assay")
        self.store.migrate()
        self.client = self.store._client
        self.folder = folder

    def encode(self, table: str, rows: list[Any]) -> tuple[list[str], bytes]:
        _, columns, names = insert_arguments(rows)
        types = self.store._insert_types(table, names)
        context = self.client.create_insert_context(
            f"assay.{table}",
            list(names),
            column_type_names=types,
            column_oriented=True,
            data=columns,
        )
        data = b"".join(NativeTransform.build_insert(context))
        return names, data[data.find(b"\n") + 1 :]  # past the INSERT statement's line

    def insert(self, target: str, names: list[str], path: Path) -> float:
        """Process CPU seconds of one insert of the Native file `path` into `target`."""
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": f"'{uuid.uuid4()}'"}
        cpu = _process_cpu()
        self.client.command(
            f"INSERT INTO assay.{target} ({', '.join(f'`{n}`' for n in names)}) "
            f"FROM INFILE '{path}' "
            f"SETTINGS {', '.join(f'{k} = {v}' for k, v in settings.items())} FORMAT Native"
        )
        return _process_cpu() - cpu


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def take_apart(spans: int, rounds: int) -> None:
    rows = _batch(spans)
    tune_gc()
    with tempfile.TemporaryDirectory() as tmp:
        engine = _Engine(Path(tmp))
        files: dict[str, tuple[list[str], Path, Path]] = {}
        for table in TABLES:
            engine.client.command(f"CREATE TABLE assay.{table}_null AS assay.{table} ENGINE = Null")
            engine.client.command(f"CREATE TABLE assay.{table}_plain AS assay.{table}")
            names, data = engine.encode(table, rows[table])
            _, one = engine.encode(table, rows[table][:1])
            path, one_path = Path(tmp) / f"{table}.native", Path(tmp) / f"{table}-1.native"
            path.write_bytes(data)
            one_path.write_bytes(one)
            files[table] = (names, path, one_path)
        engine.client.command("SYSTEM STOP MERGES")
        per_span: dict[tuple[str, str], list[float]] = {}
        per_insert: dict[tuple[str, str], list[float]] = {}
        targets = (("engine: a Null copy", "_null"), ("engine: a copy, no views", "_plain"))
        targets += (("engine: the table, views", ""),)
        for _ in range(rounds):
            for table in TABLES:
                table_rows = rows[table]
                thread = time.thread_time()
                insert_arguments(table_rows)
                per_span.setdefault((table, "build columns"), []).append(
                    time.thread_time() - thread
                )
                thread = time.thread_time()
                engine.encode(table, table_rows)
                encoded = time.thread_time() - thread  # the columns built again, then encoded
                per_span.setdefault((table, "encode Native"), []).append(
                    encoded - per_span[table, "build columns"][-1]
                )
                names, path, one_path = files[table]
                for label, suffix in targets:
                    cpu = engine.insert(table + suffix, names, path)
                    per_span.setdefault((table, label), []).append(cpu)
                    cpu = engine.insert(table + suffix, names, one_path)
                    per_insert.setdefault((table, label), []).append(cpu)
        engine.store.close()
    stages = ("build columns", "encode Native", *(label for label, _ in targets))
    print(
        f"the insert stage taken apart: {spans} LLM spans a segment, medians of {rounds} "
        "rounds, merges stopped"
    )
    print(f"  {'CPU µs per span':<26}" + "".join(f"{t:>13}" for t in TABLES) + f"{'all':>10}")
    for stage in stages:
        values = [_median(per_span[table, stage]) / spans * 1e6 for table in TABLES]
        print(f"  {stage:<26}" + "".join(f"{v:>13.1f}" for v in values) + f"{sum(values):>10.1f}")
    print(f"  {'CPU ms per 1-row insert':<26}")
    for label, _ in targets:
        values = [_median(per_insert[table, label]) * 1e3 for table in TABLES]
        print(f"  {label:<26}" + "".join(f"{v:>13.2f}" for v in values) + f"{sum(values):>10.2f}")


def by_size(size: int) -> None:
    """In a process of its own (one engine per process): see the module's part 3."""
    rows = _batch(SIZE_SPANS)
    with tempfile.TemporaryDirectory() as tmp:
        engine = _Engine(Path(tmp))
        files = []
        for start in range(0, SIZE_SPANS, size):
            for table in TABLES:
                names, data = engine.encode(table, rows[table][start : start + size])
                path = Path(tmp) / f"{table}-{start}.native"
                path.write_bytes(data)
                files.append((table, names, path))
        time.sleep(3)  # the migrations' merges
        cpu = _process_cpu()
        for _ in range(2):
            for table, names, path in files:
                engine.insert(table, names, path)
        inserted = _process_cpu()
        time.sleep(8)
        idle = _process_cpu()
        for (table,) in engine.client.query(
            "SELECT DISTINCT table FROM system.parts WHERE database = 'assay' AND active"
        ).result_rows:
            engine.client.command(f"OPTIMIZE TABLE assay.`{table}` FINAL")
        merged = _process_cpu()
        engine.store.close()
    spans = 2 * SIZE_SPANS
    figures = [
        (b - a) / spans * 1e6 for a, b in ((cpu, inserted), (inserted, idle), (idle, merged))
    ]
    print(" ".join(f"{f:.1f}" for f in figures))


def sizes(sizes_: list[int], rounds: int) -> None:
    print(
        f"\nthe engine's CPU by insert size, µs per span ({2 * SIZE_SPANS} spans' rows of the "
        f"three tables, a fresh store each, {rounds} rounds interleaved)"
    )
    print(
        f"  {'spans an insert':<16}{'inserts':>10}{'next 8 s':>10}{'OPTIMIZE FINAL':>16}{'all':>8}"
    )
    for _ in range(rounds):
        for size in sizes_:
            out = subprocess.run(
                [sys.executable, __file__, "--child-size", str(size)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            ).stdout.split()
            figures = [float(x) for x in out[-3:]]
            print(
                f"  {size:<16}{figures[0]:>10.1f}{figures[1]:>10.1f}{figures[2]:>16.1f}"
                f"{sum(figures):>8.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2_200, help="LLM spans a segment")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="2200,4400", help="spans an insert, part 3 ('' skips)")
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_size:
        by_size(args.child_size)
        return
    take_apart(args.spans, args.rounds)
    if args.sizes:
        sizes([int(s) for s in args.sizes.split(",")], max(1, args.rounds // 2))


if __name__ == "__main__":
    main()
