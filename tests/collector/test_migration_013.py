"""Migration 013 turns on vertical merges for `llm_calls` and `otel_traces` in a store written
before it: the settings are on the tables, every row is kept, and a merge into a wide part then
gathers the columns one at a time (the horizontal algorithm held every column of every part)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.collector.old_schema import old_schema
from tests.conftest import start_collector

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

TABLES = ("llm_calls", "otel_traces")
SETTINGS = (
    "vertical_merge_algorithm_min_rows_to_activate = 1",
    "vertical_merge_algorithm_min_columns_to_activate = 1",
)

# Run in a process of its own (chDB keeps one engine per process): the schema as main had it
# before 013 (014 and 015 already applied), with a call and its span.
OLD_STORE = old_schema("migration.version == 13") + textwrap.dedent(
    """
    now = time.time_ns()
    store.command(
        "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name, model,"
        f" input_messages) VALUES (fromUnixTimestamp64Nano({now}), 't1', 's1', 'old',"
        " 'gpt-4o-mini', 'hello')"
    )
    store.command(
        "INSERT INTO assay.otel_traces (Timestamp, TraceId, SpanId, ServiceName, SpanName)"
        f" VALUES (fromUnixTimestamp64Nano({now}), 't1', 's1', 'old', 'chat gpt-4o-mini')"
    )
    store.close()
    """
)

# After the collector has migrated the store: each table's settings as SHOW CREATE TABLE gives
# them, and what ClickHouse counted while it merged two parts of `llm_calls` that make a wide
# part (over 10 MiB uncompressed; a merge into a compact part is horizontal whatever the
# settings). Under the default thresholds (131,072 rows) these 8,000 rows merge horizontally.
INSPECT = textwrap.dedent(
    """
    import json, sys
    from assay.collector.store.embedded import EmbeddedStore

    store = EmbeddedStore(sys.argv[1], "assay")
    tables = {}
    for table in sys.argv[2:]:
        _, rows = store.query(f"SHOW CREATE TABLE assay.{table}")
        tables[table] = rows[0][0]
    for part in range(2):
        store.command(
            "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name,"
            " input_messages) SELECT now64(9), 't2', concat('v', toString(number)), 'vertical',"
            f" repeat(toString(number), 400) FROM numbers({part * 4000}, 4000)"
        )

    def merge_events():
        _, rows = store.query(
            "SELECT event, value FROM system.events WHERE event IN"
            " ('GatheredColumns', 'MergedIntoWideParts')"
        )
        return dict(rows)

    before = merge_events()
    store.command("OPTIMIZE TABLE assay.llm_calls FINAL")
    after = merge_events()
    _, parts = store.query(
        "SELECT part_type, sum(rows) FROM system.parts WHERE database = 'assay'"
        " AND table = 'llm_calls' AND active GROUP BY part_type"
    )
    print(json.dumps({
        "tables": tables,
        "merged": {name: after.get(name, 0) - before.get(name, 0) for name in after},
        "parts": dict(parts),
    }))
    store.close()
    """
)


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_old_store_gets_vertical_merges_and_keeps_its_rows(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    run(OLD_STORE, str(folder))
    collector = start_collector(folder, tmp_path / "collector.log")
    try:
        applied = collector.query("SELECT version, name FROM assay.schema_migrations FINAL")
        assert {"version": 13, "name": "013_vertical_merges.sql"} in applied
        assert len(applied) == len({row["version"] for row in applied})
        (call,) = collector.query(
            "SELECT trace_id, model, input_messages FROM assay.llm_calls WHERE service_name = 'old'"
        )
        assert call == {"trace_id": "t1", "model": "gpt-4o-mini", "input_messages": "hello"}
        (span,) = collector.query(
            "SELECT TraceId, SpanName FROM assay.otel_traces WHERE ServiceName = 'old'"
        )
        assert span == {"TraceId": "t1", "SpanName": "chat gpt-4o-mini"}
    finally:
        collector.stop()

    found = json.loads(run(INSPECT, str(folder), *TABLES).splitlines()[-1])
    for table in TABLES:
        for setting in SETTINGS:
            assert setting in found["tables"][table], (table, found["tables"][table])
        # the settings the table was created with are still there
        assert "ttl_only_drop_parts = 1" in found["tables"][table]
    # one wide part (and the old call in a compact one of its own if the day changed meanwhile)
    assert found["parts"].get("Wide", 0) in (8000, 8001)
    assert found["merged"].get("MergedIntoWideParts", 0) >= 1
    # columns gathered one at a time: the vertical algorithm's second stage (0 in a horizontal one)
    assert found["merged"].get("GatheredColumns", 0) > 0
