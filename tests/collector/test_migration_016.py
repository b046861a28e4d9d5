"""Migration 016 gives the dashboards' copy of the scores (`call_scores`) the `error` column: a
store written before it has its failed evaluations marked, and new ones arrive marked, so no
panel averages a failure as a value."""

from __future__ import annotations

import time

from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import migrate_before, own_database


def test_error_scores_stored_before_and_after_the_migration_are_marked(
    embedded_store: EmbeddedStore,
) -> None:
    with own_database(embedded_store, "m016", migrate=False) as own:
        migrate_before(own, 16)
        db = own.database
        now = time.time_ns()
        # Before: a judged score and a failed one of the same evaluator, on two calls.
        own.command(
            f"INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, source, error)"
            f" VALUES (fromUnixTimestamp64Nano({now}), 't1', 's1', 'judge', 0.9, 'online', ''),"
            f" (fromUnixTimestamp64Nano({now}), 't1', 's2', 'judge', 0.0, 'online',"
            " 'TimeoutError: no answer')"
        )
        assert "016_call_scores_error.sql" in own.migrate()
        # After: a new failed evaluation reaches call_scores with its text.
        own.command(
            f"INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, source, error)"
            f" VALUES (fromUnixTimestamp64Nano({now + 1}), 't1', 's3', 'judge', 0.0, 'online',"
            " 'ValueError: unusable')"
        )
        _, rows = own.query(
            f"SELECT span_id, value, error FROM {db}.call_scores FINAL ORDER BY span_id"
        )
        assert rows == [
            ("s1", 0.9, ""),
            ("s2", 0.0, "error (stored before migration 016)"),
            ("s3", 0.0, "ValueError: unusable"),
        ]
