"""Migration 021 gives the tables whose merges hold the most smaller merge blocks: the setting is
on each table after the migrations, beside the settings they had, and a merge keeps every row."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

TABLES = ("llm_calls", "otel_traces", "trace_summaries")

# In a process of its own (chDB keeps one engine per process): a new store migrated, each
# table's definition, then two parts of llm_calls merged into one.
MIGRATE_AND_MERGE = textwrap.dedent(
    """
    import json, sys
    from assay.collector.store.embedded import EmbeddedStore

    store = EmbeddedStore(sys.argv[1], "assay")
    store.migrate()
    tables = {}
    for table in sys.argv[2:]:
        _, rows = store.query(f"SHOW CREATE TABLE assay.{table}")
        tables[table] = rows[0][0]
    for part in range(2):
        store.command(
            "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name,"
            " input_messages) SELECT now64(9), 't', concat('s', toString(number)), 'merged',"
            f" repeat(toString(number), 400) FROM numbers({part * 3000}, 3000)"
        )
    store.command("OPTIMIZE TABLE assay.llm_calls FINAL")
    _, parts = store.query(
        "SELECT count(), sum(rows) FROM system.parts WHERE database = 'assay'"
        " AND table = 'llm_calls' AND active"
    )
    _, distinct = store.query("SELECT uniqExact(span_id) FROM assay.llm_calls")
    print(json.dumps({"tables": tables, "parts": list(parts[0]), "spans": distinct[0][0]}))
    store.close()
    """
)


def test_the_tables_merge_in_blocks_of_1024_rows_and_keep_their_rows(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_AND_MERGE, str(tmp_path / "data"), *TABLES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for table in TABLES:
        assert "merge_max_block_size = 1024" in found["tables"][table], found["tables"][table]
    for table in ("llm_calls", "otel_traces"):  # migration 013's stay
        assert "vertical_merge_algorithm_min_rows_to_activate = 1" in found["tables"][table]
    assert found["parts"] == [1, 6000] and found["spans"] == 6000
