"""Upgrades and downgrades of a store: what a collector of one version finds in a store another
version wrote."""

from __future__ import annotations

import time

import pytest

from assay.collector import older_spans
from assay.collector.store.base import StoreError
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import load_migrations, preamble
from tests.conftest import migrate_before, own_database


def test_a_store_a_newer_assay_migrated_is_refused_by_name(embedded_store: EmbeddedStore) -> None:
    """A downgrade (an older checkout started on a store a newer one migrated) stops the start
    naming the migrations it lacks, and leaves the store as it was; it used to start silently
    and write rows the newer schema's code does not expect."""
    with own_database(embedded_store, "newer", migrate=False) as own:
        db = own.database
        for statement in preamble(db):
            own.command(statement)
        newest = load_migrations(db)[-1]
        future = f"{newest.version + 1:03d}_from_a_newer_assay.sql"
        own.command(
            f"INSERT INTO {db}.schema_migrations (version, name) "
            f"VALUES ({newest.version + 1}, '{future}')"
        )
        with pytest.raises(StoreError, match=f"migrated by a newer Assay \\({future}; "):
            own.migrate()
        _, rows = own.query(f"SELECT name FROM {db}.schema_migrations")
        assert rows == [(future,)]  # nothing applied
        _, tables = own.query(f"SELECT name FROM system.tables WHERE database = '{db}'")
        assert tables == [("schema_migrations",)]


def test_spans_stored_before_migration_011_get_their_agent_rows_once(
    embedded_store: EmbeddedStore,
) -> None:
    """A store written before the agent-run tables (an Assay of 2026-12-02 or earlier) had its
    spans without `trace_spans` rows after the upgrade: its sessions answered 404 and its runs
    were in no summary. They are written from `otel_traces`, linked to their calls, and a
    backfill cut short (a crash after one batch) is finished by the next, nothing twice."""
    with own_database(embedded_store, "older", migrate=False) as own:
        migrate_before(own, 11)  # the agent-run tables
        db = own.database
        start = time.time_ns() - 60 * 1_000_000_000
        # A session of two traces: an agent's root span with an LLM call under it, and a call.
        spans = [
            ("t1", "r1", "", "invoke_agent", {"gen_ai.operation.name": "invoke_agent"}),
            ("t1", "c1", "r1", "chat m", {"gen_ai.operation.name": "chat"}),
            ("t2", "c2", "", "chat m", {"gen_ai.operation.name": "chat"}),
        ]
        for i, (trace, span, parent, name, attrs) in enumerate(spans):
            own.command(
                f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId,"
                " SpanName, ServiceName, SpanAttributes, StatusCode, Duration) VALUES"
                f" (fromUnixTimestamp64Nano({start + i}), '{trace}', '{span}', '{parent}',"
                f" '{name}', 'old', {attrs}, 'Ok', 1000)"
            )
        for i, (trace, span) in ((1, ("t1", "c1")), (2, ("t2", "c2"))):
            own.command(
                f"INSERT INTO {db}.llm_calls (timestamp, trace_id, span_id, service_name,"
                " operation, input_tokens, output_tokens, session_id) VALUES"
                f" (fromUnixTimestamp64Nano({start + i}), '{trace}', '{span}', 'old', 'chat',"
                f" {10 * i}, {i}, 'conversation-1')"
            )
        own.migrate()
        left = older_spans.progress(own)
        assert left is not None
        # The first start writes one batch and is killed.
        older_spans.backfill_batch(own, left, limit=2)
        assert own.query(f"SELECT count() FROM {db}.trace_spans")[1] == [(2,)]
        # The next start finishes it; the one after finds nothing to do.
        older_spans.OlderSpans(own).run()
        assert older_spans.progress(own) is None
        _, rows = own.query(
            f"SELECT span_id, kind, llm, input_tokens, session_id FROM {db}.trace_spans"
            " ORDER BY span_id"
        )
        assert rows == [
            ("c1", "llm", True, 10, "conversation-1"),
            ("c2", "llm", True, 20, "conversation-1"),
            ("r1", "agent", False, None, ""),
        ]
        _, runs = own.query(
            f"SELECT trace_id, spans, llm_calls, input_tokens FROM {db}.trace_summary"
            " ORDER BY trace_id"
        )
        assert runs == [("t1", 2, 1, 10), ("t2", 1, 1, 20)]
