"""What each materialized view costs per inserted row: every view alone, and all of a table's.

Normalizes `bench/ingest.py`'s spans into rows of the three tables that views read (`llm_calls`,
`trace_spans`, `otel_traces`), then inserts them in batches (the writer inserts a spool segment
at a time, about 2,000 of these spans) into a copy of the table (`CREATE TABLE ... AS`) with
copies of a set of its views (and of their target tables) attached, rounds of every set
interleaved, and prints the process's CPU µs per row (the engine's threads included, its
background merges of the copies too) of each round, their median and minimum: a view's cost is
its set's median less the median without views. A view that reads another view's target (the
hourly rollup reads the minute rollup's inserts) is priced with the view that feeds it.
Run: `.venv/bin/python bench/ingest_views.py [--rows 8000] [--batch 2000] [--rounds 5]
[--tables llm_calls,trace_spans,otel_traces]`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import build_requests

from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.schema import insert_arguments
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store
from assay.collector.store.base import ClickHouseStore

TABLES = ("llm_calls", "trace_spans", "otel_traces")
View = tuple[str, str, str]  # name, SELECT, target table


def _views(store: ClickHouseStore) -> dict[str, list[View]]:
    """The materialized views by the table they read."""
    db = store.database
    _, rows = store.query(
        "SELECT name, as_select, extract(create_table_query, ' TO [A-Za-z0-9_]+\\.([A-Za-z0-9_]+)')"
        " FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'"
        " ORDER BY name",
        {"db": db},
    )
    by_source: dict[str, list[View]] = {}
    for name, select, target in rows:
        source = re.search(rf"\bFROM {db}\.([A-Za-z0-9_]+)", select)
        if source:
            by_source.setdefault(source.group(1), []).append((name, select, target))
    return by_source


def _sets(views: dict[str, list[View]], table: str) -> dict[str, list[View]]:
    """`no views`, each view reading `table` alone (with the views reading its target), all."""
    sets: dict[str, list[View]] = {"no views": []}
    for view in views.get(table, []):
        chained = [view, *views.get(view[2], [])]
        sets[" + ".join(name for name, _, _ in chained)] = chained
    if len(sets) > 2:
        sets["all"] = [view for chained in list(sets.values())[1:] for view in chained]
    return sets


def _attach(store: ClickHouseStore, table: str, views: list[View]) -> list[str]:
    """A fresh copy of `table` with copies of `views` (and of their targets); returns what to
    drop after."""
    db = store.database
    copied = [table, *(target for _, _, target in views)]
    for name in copied:
        store.command(f"DROP TABLE IF EXISTS {db}.bench_{name}")
        store.command(f"CREATE TABLE {db}.bench_{name} AS {db}.{name}")
    names = "|".join(copied)
    for name, select, target in views:
        select = re.sub(rf"\b{db}\.({names})(?![A-Za-z0-9_])", rf"{db}.bench_\1", select)
        store.command(
            f"CREATE MATERIALIZED VIEW {db}.bench_{name} TO {db}.bench_{target} AS {select}"
        )
    return [f"VIEW {db}.bench_{name}" for name, _, _ in views] + [
        f"TABLE {db}.bench_{name}" for name in copied
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tables", default=",".join(TABLES))
    args = parser.parse_args()

    batch = TraceBatch()
    for body in build_requests(args.rows, 200):
        normalize_traces(decode_protobuf("traces", body), batch)
    batch.link()
    rows: dict[str, list[Any]] = {
        "llm_calls": batch.llm_calls,
        "trace_spans": batch.spans,
        "otel_traces": batch.traces,
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CollectorSettings(storage=Path(tmp) / "data").store)
        try:
            store.migrate()
            views = _views(store)
            for table in args.tables.split(","):
                _price(store, table, _sets(views, table), rows[table], args)
        finally:
            store.close()


def _price(
    store: ClickHouseStore,
    table: str,
    sets: dict[str, list[View]],
    rows: list[Any],
    args: argparse.Namespace,
) -> None:
    db = store.database
    results: dict[str, list[float]] = {name: [] for name in sets}
    for round_ in range(args.rounds + 1):  # the first round warms up
        for name, views in sets.items():
            made = _attach(store, table, views)
            cpu = 0.0
            for start in range(0, len(rows), args.batch):
                _, columns, names = insert_arguments(rows[start : start + args.batch])
                started = time.process_time()
                store.insert(f"bench_{table}", columns, names, dedup_token=f"{round_}-{start}")
                cpu += time.process_time() - started
            if not round_:  # the copies fill their own targets
                for _, _, target in views:
                    _, ((count,),) = store.query(f"SELECT count() FROM {db}.bench_{target}")
                    print(f"  {table}: bench_{target} got {count} rows")
            for drop in made:
                store.command(f"DROP {drop}")
            if round_:
                results[name].append(cpu / len(rows) * 1e6)
    print(
        f"{table}: CPU µs per row, {len(rows)} rows in batches of {args.batch}, "
        f"{args.rounds} interleaved rounds"
    )
    base = statistics.median(results["no views"])
    for name, figures in results.items():
        median = statistics.median(figures)
        each = " ".join(f"{figure:6.1f}" for figure in figures)
        extra = "" if name == "no views" else f"   views {median - base:5.1f}"
        print(f"  {name:44} {each}   median {median:6.1f} min {min(figures):6.1f}{extra}")


if __name__ == "__main__":
    main()
