"""What each materialized view costs per inserted row: every view alone, and all of a table's.

Normalizes `bench/ingest.py`'s spans into rows of the three tables that views read (`llm_calls`,
`trace_spans`, `otel_traces`), then inserts them in batches (the writer inserts a spool segment
at a time, about 2,000 of these spans) into a copy of the table (`CREATE TABLE ... AS`) with
copies of a set of its views (and of their target tables) attached, rounds of every set
interleaved, and prints the process's CPU µs per row (the engine's threads included, its
background merges of the copies too) of each round, their median and minimum: a view's cost is
its set's median less the median without views. A view that reads another view's target (the
hourly rollup reads the minute rollup's inserts) is priced with the view that feeds it.
`--sizes 200,2000,8000` prices every set at each batch size instead (ms per insert, so what is
paid per insert shows apart from what is paid per row); `--setting name=value` adds, in the same
rounds, every set with that insert setting (repeatable); `--stop-merges` keeps the copies from
merging, so the figures are the inserts' and views' own work without the later merges of the
parts they write (which are a cost of the views too, but come in bursts that land in any set).
Run: `.venv/bin/python bench/ingest_views.py [--rows 8000] [--batch 2000] [--rounds 5]
[--tables llm_calls,trace_spans,otel_traces] [--sizes 200,2000,8000] [--setting name=value]
[--stop-merges]`.
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
from assay.collector.store import base, open_store
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
    parser.add_argument("--sizes", help="batch sizes to price each set at, e.g. 200,2000,8000")
    parser.add_argument("--setting", action="append", default=[], help="name=value, repeatable")
    parser.add_argument("--stop-merges", action="store_true")
    args = parser.parse_args()
    args.per_insert = bool(args.sizes)  # figures per insert (at several sizes), else per row
    args.sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else [args.batch]
    args.rows = max(args.rows, *args.sizes)
    # The variants priced side by side: the insert settings as they are, and each one given.
    args.variants = {"": {}} | {
        f" [{given}]": dict([given.split("=", 1)]) for given in args.setting
    }

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
    results: dict[tuple[str, str, int], list[float]] = {}
    own = dict(base.INSERT_SETTINGS)
    for round_ in range(args.rounds + 1):  # the first round warms up
        for name, views in sets.items():
            for variant, settings in args.variants.items():
                made = _attach(store, table, views)
                if args.stop_merges:
                    for drop in made:
                        if drop.startswith("TABLE"):
                            store.command(f"SYSTEM STOP MERGES {drop.split()[1]}")
                base.INSERT_SETTINGS.update(settings)
                try:
                    for size in args.sizes:
                        cpu, inserts = _insert_all(store, table, rows, size, f"{round_}{variant}")
                        if round_:
                            figure = (
                                cpu / inserts * 1e3 if args.per_insert else cpu / len(rows) * 1e6
                            )
                            results.setdefault((name, variant, size), []).append(figure)
                finally:
                    base.INSERT_SETTINGS.clear()
                    base.INSERT_SETTINGS.update(own)
                if not round_ and not variant:  # the copies fill their own targets
                    for _, _, target in views:
                        _, ((count,),) = store.query(f"SELECT count() FROM {db}.bench_{target}")
                        print(f"  {table}: bench_{target} got {count} rows")
                for drop in made:
                    store.command(f"DROP {drop}")
    per_insert = args.per_insert
    unit = "CPU ms per insert" if per_insert else "CPU µs per row"
    print(
        f"{table}: {unit}, {len(rows)} rows in batches of {'/'.join(map(str, args.sizes))}, "
        f"{args.rounds} interleaved rounds{', merges stopped' if args.stop_merges else ''}"
    )
    for (name, variant, size), figures in results.items():
        median = statistics.median(figures)
        base_median = statistics.median(results[("no views", variant, size)])
        each = " ".join(f"{figure:6.1f}" for figure in figures)
        extra = "" if name == "no views" else f"   views {median - base_median:5.1f}"
        if per_insert and name != "no views":
            extra += f" ({(median - base_median) / size * 1e3:5.1f} µs per row)"
        label = f"{name}{variant}" + (f" @{size}" if per_insert else "")
        print(f"  {label:52} {each}   median {median:6.1f} min {min(figures):6.1f}{extra}")


def _insert_all(
    store: ClickHouseStore, table: str, rows: list[Any], size: int, token: str
) -> tuple[float, int]:
    """Insert `rows` into the copy of `table`, `size` at a time; returns the process's CPU
    seconds and the number of inserts."""
    cpu = 0.0
    inserts = 0
    for start in range(0, len(rows), size):
        _, columns, names = insert_arguments(rows[start : start + size])
        started = time.process_time()
        store.insert(f"bench_{table}", columns, names, dedup_token=f"{token}-{size}-{start}")
        cpu += time.process_time() - started
        inserts += 1
    return cpu, inserts


if __name__ == "__main__":
    main()
