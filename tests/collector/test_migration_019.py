"""Migration 019 counts unpriced calls in the per-user and per-session rollups, as the per-minute
one does: rows stored before it count none (their cost reads as before) until a price recompute
covers their day, calls stored after it are counted, and the migration can run again."""

from __future__ import annotations

import datetime as dt
import time

from assay.collector import price_tables
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import load_migrations
from tests.conftest import migrate_before, own_database


def _store_calls(own: EmbeddedStore, at_ns: int, costs: dict[str, float | None]) -> None:
    """One call per span id of user `u1` in session `s1`; a None cost is a model the price table
    does not know."""
    values = ", ".join(
        f"(fromUnixTimestamp64Nano({at_ns}), 't1', '{span}', 'svc', 'in-house-llm', 'u1', 's1', "
        f"{'NULL' if cost is None else cost})"
        for span, cost in costs.items()
    )
    own.command(
        f"INSERT INTO {own.database}.llm_calls (timestamp, trace_id, span_id, service_name, model,"
        f" user_id, session_id, cost_usd) VALUES {values}"
    )


def _unpriced(own: EmbeddedStore) -> dict[str, tuple[int, int]]:
    """(calls, unpriced_calls) in each rollup."""
    db = own.database
    counts = {}
    for table in ("llm_calls_1m", "llm_users_1d", "llm_sessions_1d"):
        _, [(calls, unpriced)] = own.query(
            f"SELECT sum(calls), sum(unpriced_calls) FROM {db}.{table}"
        )
        counts[table] = (calls, unpriced)
    return counts


def test_unpriced_calls_are_counted_per_user_and_session_from_the_migration_on(
    embedded_store: EmbeddedStore,
) -> None:
    with own_database(embedded_store, "m019", migrate=False) as own:
        migrate_before(own, 19)
        now = time.time_ns()
        _store_calls(own, now, {"old-unpriced": None})
        assert "019_user_session_unpriced.sql" in own.migrate()
        # Stored before: no count (the cost reads as before, a sum).
        assert _unpriced(own) == {
            "llm_calls_1m": (1, 1),
            "llm_users_1d": (1, 0),
            "llm_sessions_1d": (1, 0),
        }
        # A recompute of the day counts them (its correcting rows).
        day = dt.datetime.fromtimestamp(now / 1e9, dt.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        price_tables.recompute(own, day, day + dt.timedelta(days=1))
        assert _unpriced(own) == {
            "llm_calls_1m": (1, 1),
            "llm_users_1d": (1, 1),
            "llm_sessions_1d": (1, 1),
        }
        # Idempotent: the statements again change nothing.
        [m019] = [m for m in load_migrations(own.database) if m.version == 19]
        for statement in m019.statements:
            own.command(statement)
        _store_calls(own, now + 1, {"new-unpriced": None, "new-priced": 0.25})
        # Stored after: counted as the per-minute rollup counts them.
        assert _unpriced(own) == {
            "llm_calls_1m": (3, 2),
            "llm_users_1d": (3, 2),
            "llm_sessions_1d": (3, 2),
        }
