"""What the materialized views on `llm_calls` cost per inserted row, alone and together.

Normalizes `bench/ingest.py`'s spans into `llm_calls` rows, then inserts them in batches into a
copy of `llm_calls` (`CREATE TABLE ... AS`) with copies of a set of its views (and of their
target tables) attached, rounds of every set interleaved, and prints the CPU µs per row of each
round and their minimum: the views' cost is a set's minimum less the minimum without views.
Run: `.venv/bin/python bench/ingest_views.py [--rows 8000] [--batch 2000] [--rounds 4]`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import build_requests

from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.schema import insert_arguments
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store
from assay.collector.store.base import ClickHouseStore

# The views on llm_calls, and the hourly rollup, which reads the minute rollup's inserts.
SETS = {
    "no views": (),
    "all five": (
        "llm_calls_1m_mv",
        "llm_calls_1h_mv",
        "llm_errors_mv",
        "llm_users_1d_mv",
        "llm_sessions_1d_mv",
    ),
    "llm_calls_1m + 1h": ("llm_calls_1m_mv", "llm_calls_1h_mv"),
    "llm_users_1d + sessions_1d": ("llm_users_1d_mv", "llm_sessions_1d_mv"),
    "llm_errors": ("llm_errors_mv",),
}


def _copy_views(store: ClickHouseStore, views: tuple[str, ...]) -> list[tuple[str, str]]:
    """Copies of `views` reading the copies (`bench_<table>`); returns the copies' names and
    their target tables'."""
    db = store.database
    _, rows = store.query(
        "SELECT name, as_select, extract(create_table_query, ' TO ([A-Za-z0-9_.]+)') "
        "FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}",
        {"db": db, "names": list(views)},
    )
    made = []
    for name, select, target in sorted(rows, key=lambda row: views.index(row[0])):
        target = target.split(".")[-1]
        store.command(f"DROP TABLE IF EXISTS {db}.bench_{target}")
        store.command(f"CREATE TABLE {db}.bench_{target} AS {db}.{target}")
        select = re.sub(rf"\b{db}\.(llm_calls(?:_1m)?)(?![A-Za-z0-9_])", rf"{db}.bench_\1", select)
        store.command(
            f"CREATE MATERIALIZED VIEW {db}.bench_{name} TO {db}.bench_{target} AS {select}"
        )
        made.append((f"bench_{name}", f"bench_{target}"))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    batch = TraceBatch()
    for body in build_requests(args.rows, 200):
        normalize_traces(decode_protobuf("traces", body), batch)
    calls = batch.llm_calls
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CollectorSettings(storage=Path(tmp) / "data").store)
        try:
            store.migrate()
            db = store.database
            results: dict[str, list[float]] = {name: [] for name in SETS}
            for round_ in range(args.rounds + 1):  # the first round warms up
                for name, views in SETS.items():
                    store.command(f"DROP TABLE IF EXISTS {db}.bench_llm_calls")
                    store.command(f"CREATE TABLE {db}.bench_llm_calls AS {db}.llm_calls")
                    made = _copy_views(store, views)
                    cpu = 0.0
                    for start in range(0, len(calls), args.batch):
                        _, columns, names = insert_arguments(calls[start : start + args.batch])
                        started = time.process_time()
                        store.insert(
                            "bench_llm_calls", columns, names, dedup_token=f"{round_}-{start}"
                        )
                        cpu += time.process_time() - started
                    for view, target in made:
                        store.command(f"DROP VIEW {db}.{view}")
                        if not round_:  # the copies fill their own targets
                            _, ((rows,),) = store.query(f"SELECT count() FROM {db}.{target}")
                            print(f"  {view} wrote {rows} rows into {target}")
                    if round_:
                        results[name].append(cpu / len(calls) * 1e6)
        finally:
            store.close()
    print(
        f"llm_calls views: CPU µs per row, {len(calls)} rows in batches of {args.batch}, "
        f"{args.rounds} interleaved rounds"
    )
    base = min(results["no views"])
    for name, figures in results.items():
        rounds = " ".join(f"{figure:6.1f}" for figure in figures)
        extra = "" if name == "no views" else f"   views {min(figures) - base:5.1f}"
        print(f"  {name:28} {rounds}   min {min(figures):6.1f}{extra}")


if __name__ == "__main__":
    main()
