"""The reads behind the trace and session pages: a run's spans as a tree, and its summary
computed from them agreeing with the trace_summary view (migration 011) column for column,
whatever the dialect, the order the spans came in, or a span sent twice."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from assay.collector.completed_runs import write_all_completed
from assay.collector.pipeline import Pipeline
from assay.collector.records import traces
from assay.collector.schema import RUN_SUMMARY_COLUMNS
from assay.collector.settings import CollectorSettings
from assay.collector.spool import MemorySpool
from assay.collector.store.embedded import EmbeddedStore
from tests.collector.agent_traces import AgentRun, genai_run, openinference_run, openllmetry_run
from tests.collector.otlp_builders import make_request

SETTINGS = CollectorSettings(
    flush_interval=0.05, retry_initial=0.01, retry_max=0.05, shutdown_timeout=5
)
# Every column but the times and the cost (floats, compared apart) and the services (a set).
COMPARED = (
    *(
        c
        for c in RUN_SUMMARY_COLUMNS
        if c
        not in ("trace_id", "start", "end", "duration_ms", "updated_at", "cost_usd", "services")
    ),
    "has_root",
)


def send(store: EmbeddedStore, service: str, batches: list[list[Any]]) -> None:
    pipeline = Pipeline(store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    for spans in batches:
        request = make_request(service, *spans)
        asyncio.run(pipeline.submit("traces", request.SerializeToString(), len(spans)))
        assert pipeline.flush(20)
    pipeline.stop()


def view_row(store: EmbeddedStore, trace_id: str) -> dict[str, Any]:
    names, rows = store.query(
        "SELECT * FROM assay.trace_summary WHERE trace_id = {t:String}", {"t": trace_id}
    )
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0], strict=True))


@pytest.mark.parametrize("make_run", [genai_run, openinference_run, openllmetry_run])
def test_a_runs_summary_from_its_spans_is_the_views(
    embedded_store: EmbeddedStore, make_run: Any
) -> None:
    run: AgentRun = make_run()
    shuffled = list(run.spans)
    random.Random(3).shuffle(shuffled)
    # Span by span in a shuffled order, the first one twice.
    send(embedded_store, f"records-{uuid.uuid4().hex[:8]}", [[s] for s in [*shuffled, shuffled[0]]])
    trace = traces.get_trace(embedded_store, run.trace_hex)
    assert trace is not None
    expected = view_row(embedded_store, run.trace_hex)
    got = trace.summary
    assert {k: got[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}
    assert got["cost_usd"] == pytest.approx(expected["cost_usd"])
    assert got["duration_ms"] == pytest.approx(expected["duration_ms"])
    assert got["services"] == sorted(expected["services"])
    # The tree: the root first, every other span after its parent and one level below it.
    spans = trace.spans
    assert spans[0]["span_id"] == expected["root_span_id"] and spans[0]["depth"] == 0
    placed = {spans[0]["span_id"]: 0}
    for span in spans[1:]:
        assert placed[span["parent_span_id"]] == span["depth"] - 1
        placed[span["span_id"]] = span["depth"]
    assert len(placed) == expected["spans"]
    # Bars stay inside the run's time line.
    assert all(s["left_pct"] >= 0 and s["left_pct"] + s["width_pct"] <= 100.0001 for s in spans)


def test_a_sessions_runs_in_order_with_their_question_and_answer(
    embedded_store: EmbeddedStore,
) -> None:
    session = f"conv-{uuid.uuid4().hex[:8]}"
    first, second = genai_run(session), genai_run(session)
    send(embedded_store, f"records-{uuid.uuid4().hex[:8]}", [second.spans, first.spans])
    found = traces.get_session(embedded_store, session)
    assert found is not None
    assert [t["trace_id"] for t in found.turns] == sorted(
        [first.trace_hex, second.trace_hex],
        key=lambda t: view_row(embedded_store, t)["start"],
    )
    assert all(t["question"] and t["answer"] for t in found.turns)
    totals = found.totals
    assert (totals["turns"], totals["llm_calls"], totals["tool_calls"], totals["errors"]) == (
        2,
        4,
        4,
        2,
    )
    assert traces.get_session(embedded_store, f"none-{session}") is None


def test_a_completed_run_is_read_from_its_row_as_its_spans_give_it(
    embedded_store: EmbeddedStore,
) -> None:
    """Once a run is in completed_runs, the sessions list and page read its row, not its spans:
    the same summary either way."""
    session = f"conv-{uuid.uuid4().hex[:8]}"
    runs = [genai_run(session), openinference_run(session)]
    send(embedded_store, f"records-{uuid.uuid4().hex[:8]}", [run.spans for run in runs])
    before = traces.get_session(embedded_store, session)
    refs = traces._runs_of(embedded_store, [session])
    assert before is not None and traces._completed(embedded_store, refs) == {}
    write_all_completed(embedded_store)
    assert set(traces._completed(embedded_store, refs)) == {run.trace_hex for run in runs}
    after = traces.get_session(embedded_store, session)
    assert after is not None
    for old, new in zip(before.turns, after.turns, strict=True):
        assert {k: new[k] for k in COMPARED} == {k: old[k] for k in COMPARED}
        assert (new["start"], new["end"]) == (old["start"], old["end"])
        assert new["cost_usd"] == pytest.approx(old["cost_usd"])
        assert new["services"] == old["services"]
