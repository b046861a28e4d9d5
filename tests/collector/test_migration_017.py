"""Migration 017 keeps trace_summaries' per-span states in two maps instead of nine states: a
store written before it reads the same trace_summary rows after it, run once or twice, and spans
that arrive after it join the summaries stored before as they would in a store that always had
the new shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import load_migrations
from tests.conftest import migrate_before, own_database

VERSION = 17
HOUR = (int(time.time()) // 3600 - 2) * 3600 * 10**9  # an hour's start, in ns (inside the TTL)
MINUTE = 60 * 10**9

Span = tuple[Any, ...]


def span(
    trace: str,
    span_id: str,
    parent: str = "",
    *,
    at: int = 0,
    kind: str = "span",
    status: str = "ok",
    llm: bool = False,
    tokens: tuple[int | None, int | None] = (None, None),
    cost: float | None = None,
    agent: str = "",
    service: str = "svc",
) -> Span:
    start = HOUR + at * MINUTE
    return (trace, span_id, parent, start, start + MINUTE // 2, service, f"{kind} {span_id}",
            kind, status, agent, llm, *tokens, cost, "u-1", f"s-{trace}")  # fmt: skip


# Each list is one insert: a partial row per trace and hour in trace_summaries.
INSERTS: list[list[Span]] = [
    [
        # An agent run: two priced LLM calls, a tool that worked and one that failed.
        span("t1", "a", kind="agent", agent="planner"),
        span("t1", "b", "a", at=1, kind="llm", llm=True, tokens=(100, 20), cost=0.1),
        span("t1", "c", "a", at=2, kind="tool", service="tools"),
        # LLM calls none of which has a price: the trace's cost is NULL.
        span("t2", "a", kind="llm", llm=True, tokens=(10, 5)),
        span("t2", "b", "a", at=1, kind="llm", llm=True),
    ],
    [
        span("t1", "d", "a", at=3, kind="tool", status="error"),
        span("t1", "e", "a", at=4, kind="llm", llm=True, tokens=(200, 40), cost=0.2),
        span("t1", "b", "a", at=1, kind="llm", llm=True, tokens=(100, 20), cost=0.1),  # again
        # One priced call, one not: a lower bound and one unpriced call.
        span("t3", "a", kind="llm", llm=True, tokens=(7, None), cost=0.3),
        span("t3", "b", "a", at=1, kind="llm", llm=True, tokens=(None, 3)),
        # No LLM call and nothing counted but spans (every flag 0): cost 0, not NULL.
        span("t4", "a", at=2),
        span("t4", "b", "a", at=3, kind="chain"),
    ],
    [
        # A run whose root never came, over two hours; one span sent twice, the second copy
        # priced and failed: counted once, with its price and its error, and as unpriced (a
        # copy of it was), as the old states counted it. (Not the root candidate: copies of the
        # root that differ tie in its argMin, which then takes either, before as after.)
        span("t5", "a", "x", at=50, kind="tool", agent="late"),
        span("t5", "b", "x", at=70, kind="llm", llm=True, tokens=(1, 1)),
        span("t1", "f", "e", at=5, kind="llm", llm=True, tokens=(0, 0), cost=0.0),
    ],
    [
        span("t5", "b", "x", at=70, kind="llm", llm=True, status="error", tokens=(1, 1), cost=0.5),
        span("t4", "b", "a", at=3, kind="chain"),
    ],
]
# Spans that arrive after the migration: late ones, and one sent again.
LATER: list[list[Span]] = [
    [
        span("t1", "g", "a", at=6, kind="llm", llm=True, tokens=(5, 5), cost=0.05),
        span("t2", "a", kind="llm", llm=True, tokens=(10, 5)),
        span("t3", "c", "a", at=2, kind="tool", status="error"),
    ],
    [span("t6", "a", kind="agent", agent="new"), span("t6", "b", "a", at=1, llm=True, cost=0.2)],
]
COLUMNS = (
    "trace_id, span_id, parent_span_id, start, end, service_name, span_name, kind, status, "
    "agent_name, llm, input_tokens, output_tokens, cost_usd, user_id, session_id"
)


def literal(index: int, value: Any) -> str:
    if value is None:
        return "NULL"
    if index in (3, 4):  # start, end
        return f"fromUnixTimestamp64Nano({value})"
    return str(value).lower() if isinstance(value, bool) else repr(value)


def insert(store: EmbeddedStore, spans: list[Span]) -> None:
    values = ", ".join(
        "(" + ", ".join(literal(index, value) for index, value in enumerate(row)) + ")"
        for row in spans
    )
    store.command(f"INSERT INTO {store.database}.trace_spans ({COLUMNS}) VALUES {values}")


def summaries(store: EmbeddedStore, with_updated_at: bool = True) -> list[dict[str, Any]]:
    names, rows = store.query(f"SELECT * FROM {store.database}.trace_summary ORDER BY trace_id")
    return [
        {name: value for name, value in zip(names, row, strict=True)}
        | ({} if with_updated_at else {"updated_at": None})
        for row in rows
    ]


@contextmanager
def store_before_the_migration(embedded_store: EmbeddedStore) -> Iterator[EmbeddedStore]:
    with own_database(embedded_store, "m017", migrate=False) as own:
        migrate_before(own, VERSION)
        yield own


def state_columns(store: EmbeddedStore) -> set[str]:
    _, rows = store.query(
        "SELECT name FROM system.columns WHERE database = {db:String} "
        "AND table = 'trace_summaries' AND type LIKE 'AggregateFunction%'",
        {"db": store.database},
    )
    return {name for (name,) in rows}


def test_a_store_migrated_from_the_old_states_reads_the_same_summaries(
    embedded_store: EmbeddedStore,
) -> None:
    with store_before_the_migration(embedded_store) as old:
        for spans in INSERTS:
            insert(old, spans)
        before = summaries(old)
        assert len(state_columns(old)) == 11

        assert "017_trace_summary_states.sql" in old.migrate()
        assert state_columns(old) == {"root", "agent_name", "span_flags", "call_usage"}
        assert summaries(old) == before
        # A migration cut short runs again from its first statement: nothing changes.
        (migration,) = [m for m in load_migrations(old.database) if m.version == VERSION]
        for statement in migration.statements:
            old.command(statement)
        assert summaries(old) == before
        old.command(f"OPTIMIZE TABLE {old.database}.trace_summaries FINAL")
        assert summaries(old) == before

        by_trace = {row["trace_id"]: row for row in before}
        counts = ("spans", "llm_calls", "tool_calls", "errors", "tool_errors", "unpriced_calls")
        assert [by_trace[t][c] for t in ("t1", "t2", "t3", "t4", "t5") for c in counts] == [
            6, 3, 2, 1, 1, 0,
            2, 2, 0, 0, 0, 2,
            2, 2, 0, 0, 0, 1,
            2, 0, 0, 0, 0, 0,
            2, 1, 1, 1, 0, 1,
        ]  # fmt: skip
        assert [by_trace[t]["cost_usd"] for t in ("t2", "t4")] == [None, 0.0]
        assert by_trace["t5"]["cost_usd"] == 0.5
        assert (by_trace["t1"]["input_tokens"], by_trace["t1"]["output_tokens"]) == (300, 60)

        # Spans after the migration join the summaries stored before it, as in a store that
        # had the new states from the start.
        for spans in LATER:
            insert(old, spans)
        with own_database(embedded_store, "m017new") as new:
            for spans in INSERTS + LATER:
                insert(new, spans)
            after = summaries(old, with_updated_at=False)
            assert after == summaries(new, with_updated_at=False)
            assert len(after) == 6 and after != [row | {"updated_at": None} for row in before]


def test_the_rebuild_streams_the_spans_whatever_the_store_holds(
    embedded_store: EmbeddedStore,
) -> None:
    """The stored summaries get their new states from one partial row per span: the statement
    neither aggregates nor sorts (either holds the whole store at once), and writes by one
    thread, so its memory is a block's however many spans the store keeps."""
    (migration,) = [m for m in load_migrations(embedded_store.database) if m.version == VERSION]
    (rebuild,) = [s for s in migration.statements if s.startswith("INSERT")]
    _, rows = embedded_store.query(f"EXPLAIN PIPELINE {rebuild}")
    steps = [line for (line,) in rows if "label=" in line]
    assert not [step for step in steps if "Aggregating" in step or "Sorting" in step], steps
    assert len([step for step in steps if "MergeTreeSink" in step]) == 1, steps
