"""completed_runs (migration 015) holds a run once it is complete: its root span arrived and it
went quiet. A run still receiving spans or without its root waits; a late span writes the run
again and the newer row is the one read; a collector started again goes on from what is
written, and the row says what the trace_summary view says."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.completed_runs import CompletedRuns
from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.schema import RUN_SUMMARY_COLUMNS, TraceSpanRow, insert_arguments
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import own_database

QUIET = EvaluationConfig(run_quiet_period=0)
BUSY = EvaluationConfig(run_quiet_period=3600)  # nothing stored is quiet yet


@pytest.fixture
def store(embedded_store: EmbeddedStore) -> Iterator[EmbeddedStore]:
    with own_database(embedded_store, "runs") as own:
        yield own


def span(
    trace: str, span_id: str, parent: str, at_ms: int, kind: str, **extra: Any
) -> TraceSpanRow:
    start = (int(time.time()) - 600) * 10**9 + at_ms * 10**6
    return TraceSpanRow(
        trace,
        span_id,
        parent,
        start,
        start + 100 * 10**6,
        "shop-agent",
        f"{kind} {span_id}",
        kind,
        extra.pop("status", "ok"),
        "genai",
        **extra,
    )


def write(store: EmbeddedStore, *rows: TraceSpanRow) -> None:
    store.insert(*insert_arguments(list(rows)))


def runs(store: EmbeddedStore) -> dict[str, dict[str, Any]]:
    names, rows = store.query(
        f"SELECT {', '.join(RUN_SUMMARY_COLUMNS)} FROM {store.database}.completed_runs FINAL"
    )
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def test_a_run_is_written_once_its_root_arrived_and_it_went_quiet(store: EmbeddedStore) -> None:
    write(
        store,
        span("t1", "root", "", 0, "agent", agent_name="planner"),
        span("t1", "llm", "root", 10, "llm", llm=True, input_tokens=100, cost_usd=0.5),
        span("t2", "tool", "root-not-here", 20, "tool", tool_name="search"),
    )
    CompletedRuns(BUSY, store).look()
    assert runs(store) == {}  # still within its quiet period
    CompletedRuns(QUIET, store).look()
    written = runs(store)
    assert set(written) == {"t1"}  # t2's root has not arrived
    assert written["t1"]["agent_name"] == "planner"
    assert (written["t1"]["llm_calls"], written["t1"]["input_tokens"]) == (1, 100)
    assert written["t1"]["cost_usd"] == pytest.approx(0.5)


def test_a_late_span_writes_the_run_again_and_replaces_it(store: EmbeddedStore) -> None:
    completed = CompletedRuns(QUIET, store)
    write(store, span("t1", "root", "", 0, "agent"), span("t1", "llm", "root", 10, "llm", llm=True))
    completed.look()
    assert runs(store)["t1"]["spans"] == 2
    write(store, span("t1", "tool", "root", 50, "tool", tool_name="search", status="error"))
    time.sleep(0.01)  # the store's clock, in milliseconds, moves past the late span
    completed.look()
    late = runs(store)["t1"]
    assert (late["spans"], late["tool_calls"], late["tool_errors"]) == (3, 1, 1)
    _, [[rows]] = store.query(f"SELECT count() FROM {store.database}.completed_runs FINAL")
    assert rows == 1


def test_a_restarted_collector_goes_on_from_the_newest_row(store: EmbeddedStore) -> None:
    write(store, span("t1", "root", "", 0, "agent"))
    CompletedRuns(QUIET, store).look()
    time.sleep(0.01)
    write(store, span("t2", "root", "", 0, "workflow"))
    time.sleep(0.01)
    again = CompletedRuns(QUIET, store)
    again.look()
    assert set(runs(store)) == {"t1", "t2"}
    _, [[rows]] = store.query(f"SELECT count() FROM {store.database}.completed_runs")
    assert rows == 2  # t1 was not written a second time


def test_the_row_is_the_trace_summary_row(store: EmbeddedStore) -> None:
    write(
        store,
        span("t1", "root", "", 0, "agent", agent_name="planner", user_id="u1", session_id="s1"),
        span("t1", "a", "root", 10, "llm", llm=True, input_tokens=7, output_tokens=3),
        span("t1", "b", "root", 30, "llm", llm=True, cost_usd=0.25, status="error"),
        span("t1", "c", "a", 40, "tool", tool_name="fetch", status="error"),
    )
    CompletedRuns(QUIET, store).look()
    names, [view] = store.query(
        f"SELECT {', '.join(RUN_SUMMARY_COLUMNS)} FROM {store.database}.trace_summary"
    )
    assert runs(store)["t1"] == dict(zip(names, view, strict=True))


def test_the_thread_writes_runs_as_they_complete_until_stopped(store: EmbeddedStore) -> None:
    completed = CompletedRuns(EvaluationConfig(run_quiet_period=0, run_poll_interval=0.05), store)
    completed.start()
    try:
        write(store, span("t1", "root", "", 0, "agent"))
        deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
        while "t1" not in runs(store) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        completed.stop()
    assert "t1" in runs(store)
    assert completed.failures == 0 and not completed.background.alive


def test_a_look_while_spans_are_being_inserted_stays_before_that_insert(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store stamps a run's `updated_at` while the insert of its spans runs, and the run can
    be read only once the insert ends: a look in between must not move past it, or the run is
    never written. Here the insert has stored its rows and not returned yet."""
    stored, release = threading.Event(), threading.Event()
    real_insert = store._client.insert

    def insert_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = real_insert(*args, **kwargs)
        stored.set()
        release.wait(30)
        return result

    completed = CompletedRuns(QUIET, store)
    completed.look()  # the first look: its bound is the store's now
    monkeypatch.setattr(store._client, "insert", insert_then_wait)
    writer = threading.Thread(target=write, args=(store, span("t1", "root", "", 0, "agent")))
    writer.start()
    try:
        assert stored.wait(30)
        time.sleep(0.01)  # the store's clock, in milliseconds, moves past the stamp
        completed.look()
        assert runs(store) == {}  # the insert still runs: the look stayed before it began
    finally:
        release.set()
        writer.join()
    time.sleep(0.01)
    completed.look()
    assert set(runs(store)) == {"t1"}
