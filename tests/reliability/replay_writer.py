"""One writer's life, in a process of its own: `python -m tests.reliability.replay_writer STORE
SPOOL [--killed-before VIEW]` stores what SPOOL holds into the embedded store in STORE (its
schema created first when the folder is new, as a collector's first start does), then prints
what the store and the writer counted, as JSON. With `--killed-before VIEW` it leaves the store
and the spool as a `kill -9` in the middle of storing does: every segment's rows are in their
tables and in every view but VIEW (the materialized view is detached meanwhile), and every
segment stays in the spool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from assay.collector.pipeline import Pipeline
from assay.collector.settings import CollectorSettings
from assay.collector.spool import DiskSpool
from assay.collector.store.base import Store
from assay.collector.store.embedded import EmbeddedStore

# Every table a call's row reaches through a view, and how each counts calls.
CALL_COUNTS = {
    "llm_calls": "count()",
    "llm_calls_1m": "sum(calls)",
    "llm_calls_1h": "sum(calls)",
    "llm_users_1d": "sum(calls)",
    "llm_sessions_1d": "sum(calls)",
}


def run_in_a_process(store: Path, spool: Path, *options: str) -> dict[str, Any]:
    """This module's life in a process of its own (so the store is opened and closed as a
    collector's start and stop do); what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.replay_writer", str(store), str(spool), *options],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def store_spool(
    store: Store, spool_folder: Path, stats: dict[str, Any] | None = None
) -> dict[str, int]:
    """Store what the spool holds; how many calls each table of CALL_COUNTS holds then (and the
    writer's counters into `stats`)."""
    settings = CollectorSettings(flush_interval=0.05, retry_initial=0.01, shutdown_timeout=5)
    pipeline = Pipeline(store, DiskSpool(spool_folder, 10**8, max_age=0.05), settings)
    pipeline.start()
    assert pipeline.flush(30)
    pipeline.stop()
    counts = {}
    for table, count in CALL_COUNTS.items():
        _, rows = store.query(f"SELECT {count} FROM {store.database}.{table}")
        counts[table] = int(rows[0][0] or 0)
    if stats is not None:
        stats.update(pipeline.stats.snapshot())
    return counts


def store_killed_before(store: Store, spool_folder: Path, view: str) -> dict[str, int]:
    """Store what the spool holds but for `view`'s part, and release nothing."""
    settings = CollectorSettings(flush_interval=0.05, retry_initial=0.01, shutdown_timeout=5)
    spool = DiskSpool(spool_folder, 10**8, max_age=0.05)
    pipeline = Pipeline(store, spool, settings)
    store.command(f"DETACH TABLE {store.database}.{view}")
    last = 0
    while (segment := spool.next_segment(timeout=0.2, after=last)) is not None:
        assert pipeline._write(segment)
        last = segment.seq
    store.command(f"ATTACH TABLE {store.database}.{view}")
    spool.close()
    return dict(pipeline.stats.deduplicated)


def main(store_folder: Path, spool_folder: Path, killed_before: str | None = None) -> None:
    store = EmbeddedStore(store_folder, "assay")
    store.migrate()
    stats: dict[str, Any] = {}
    if killed_before:
        stats["deduplicated"] = store_killed_before(store, spool_folder, killed_before)
        counts = {
            table: int(store.query(f"SELECT {count} FROM {store.database}.{table}")[1][0][0] or 0)
            for table, count in CALL_COUNTS.items()
        }
    else:
        counts = store_spool(store, spool_folder, stats)
    print(json.dumps({"counts": counts, "deduplicated": stats["deduplicated"]}))
    store.close()


if __name__ == "__main__":
    killed_before = sys.argv[4] if sys.argv[3:4] == ["--killed-before"] else None
    main(Path(sys.argv[1]), Path(sys.argv[2]), killed_before)
