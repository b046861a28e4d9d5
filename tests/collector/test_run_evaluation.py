"""Run- and session-level online evaluation: a rule of level trace judges a run once it is
complete (root arrived, quiet period over), once, and again when a late span changes it, the new
score replacing the old; a session rule judges the conversation after inactivity."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.evaluation.config import EvaluationConfig, Rule
from assay.collector.evaluation.rules import compile_rules
from assay.collector.evaluation.runs import RunEvaluation
from assay.collector.pipeline import Pipeline
from assay.collector.schema import ScoreRow
from assay.collector.settings import CollectorSettings
from assay.collector.spool import MemorySpool
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.agent_traces import MS, QUESTION, AgentRun, genai_run
from tests.collector.otlp_builders import make_request, make_span

SETTINGS = CollectorSettings(
    flush_interval=0.05, retry_initial=0.01, retry_max=0.05, shutdown_timeout=5
)
FAILED = "[error"  # how a failed step reads in the judge's prompt (trajectory.steps_text)


def verdict(request: dict[str, Any]) -> str:
    """The fake judge: a run whose steps show more than one failure did not reach its goal."""
    prompt = request["messages"][-1]["content"]
    failures = prompt.count(FAILED)
    score = 1.0 if failures <= 1 else 0.0
    label = "completed" if score else "not_completed"
    return json.dumps({"score": score, "label": label, "explanation": f"{failures} failures"})


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=verdict) as server:
        yield server


def evaluation(store: EmbeddedStore, judge: FakeOpenAI, level: str, **where: str) -> RunEvaluation:
    judge_options = {"base_url": judge.base_url, "api_key": "test-key", "max_retries": 0}
    config = EvaluationConfig(
        rules=[
            Rule(
                level=level,  # type: ignore[arg-type]
                where=where,
                evaluators=[{"goal_completion": judge_options}, "no_tool_errors"],
            )
        ],
        run_quiet_period=3600,
        session_inactivity=3600,
    )
    return RunEvaluation(config, store, compile_rules(config))


def send(pipeline: Pipeline, service: str, spans: list[Any]) -> None:
    request = make_request(service, *spans)
    asyncio.run(pipeline.submit("traces", request.SerializeToString(), len(spans)))
    assert pipeline.flush(20)


def scores(store: EmbeddedStore, column: str, key: str) -> dict[str, tuple[Any, ...]]:
    _, rows = store.query(
        "SELECT name, value, passed, level, trace_id, span_id, session_id, count() OVER "
        f"(PARTITION BY name) FROM assay.scores FINAL WHERE {column} = {{k:String}} "
        "AND source = 'online'",
        {"k": key},
    )
    return {row[0]: row[1:] for row in rows}


def late_failure(run: AgentRun) -> Any:
    """A tool call of the run that failed, arriving after the run was judged."""
    root = run.spans[0]
    return make_span(
        f"execute_tool {run.tool}",
        {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.TOOL_NAME: run.tool,
            sc.TOOL_CALL_ARGUMENTS: json.dumps({"order_id": "A-18"}),
            sc.ERROR_TYPE: "TimeoutError",
        },
        trace_id=run.trace_id,
        span_id=os.urandom(8),
        parent_span_id=root.span_id,
        start_ns=root.start_time_unix_nano + 60 * MS,
        duration_ns=5 * MS,
        error=True,
    )


def test_a_run_is_judged_once_when_complete_and_again_when_a_late_span_changes_it(
    embedded_store: EmbeddedStore, judge: FakeOpenAI
) -> None:
    service = f"runs-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    runs = evaluation(embedded_store, judge, "trace", service=service)
    session = f"conv-{uuid.uuid4().hex[:6]}"
    run = genai_run(session=session)
    asked = len(judge.requests)
    try:
        root, *children = run.spans
        send(pipeline, service, children)
        runs.config.run_quiet_period = 0
        asyncio.run(runs.look())
        assert scores(embedded_store, "trace_id", run.trace_hex) == {}  # no root: not complete

        send(pipeline, service, [root])
        runs.config.run_quiet_period = 3600
        asyncio.run(runs.look())
        assert scores(embedded_store, "trace_id", run.trace_hex) == {}  # still in its quiet time

        runs.config.run_quiet_period = 0
        asyncio.run(runs.look())
        asyncio.run(runs.look())  # nothing changed: not judged again
        first = scores(embedded_store, "trace_id", run.trace_hex)
        assert first["goal_completion"][:6] == (1.0, True, "trace", run.trace_hex, "", session)
        assert first["no_tool_errors"][:3] == (0.5, False, "trace")  # 1 of 2 tool calls failed
        assert runs.stats.runs == 1 and len(judge.requests) == asked + 1
        goal = judge.requests[-1]["messages"][-1]["content"]
        assert QUESTION in goal and "execute_tool" not in goal and "tool lookup_order" in goal

        send(pipeline, service, [late_failure(run)])
        asyncio.run(runs.look())
        again = scores(embedded_store, "trace_id", run.trace_hex)
        assert again["goal_completion"][:3] == (0.0, False, "trace")  # replaced, not added
        assert again["no_tool_errors"][0] == pytest.approx(1 / 3)
        assert {row[-1] for row in again.values()} == {1}  # one score per evaluator
        assert runs.stats.runs == 2 and len(judge.requests) == asked + 2
    finally:
        pipeline.stop()


def test_a_restarted_evaluation_judges_nothing_twice(
    embedded_store: EmbeddedStore, judge: FakeOpenAI
) -> None:
    service = f"restart-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    try:
        done = genai_run()
        send(pipeline, service, done.spans)
        first = evaluation(embedded_store, judge, "trace", service=service)
        first.config.run_quiet_period = 0
        asyncio.run(first.look())
        assert first.stats.runs == 1
        quiet_meanwhile = genai_run()
        send(pipeline, service, quiet_meanwhile.spans)
        second = evaluation(embedded_store, judge, "trace", service=service)
        second.config.run_quiet_period = 0
        asyncio.run(second.look())
        assert second.stats.runs == 1  # the run that went quiet while it was down, only
        assert scores(embedded_store, "trace_id", quiet_meanwhile.trace_hex)
    finally:
        pipeline.stop()


def test_a_conversation_is_judged_as_a_whole_after_inactivity(
    embedded_store: EmbeddedStore, judge: FakeOpenAI
) -> None:
    service = f"sessions-{uuid.uuid4().hex[:8]}"
    session = f"conv-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    conversation = evaluation(embedded_store, judge, "session", service=service)
    try:
        turns = [genai_run(session=session), genai_run(session=session)]
        for turn in turns:
            send(pipeline, service, turn.spans)
        asyncio.run(conversation.look())
        assert scores(embedded_store, "session_id", session) == {}  # still active
        conversation.config.session_inactivity = 0
        asyncio.run(conversation.look())
        got = scores(embedded_store, "session_id", session)
        assert got["no_tool_errors"][:6] == (0.5, False, "session", "", "", session)
        assert got["goal_completion"][2] == "session"
        assert conversation.stats.sessions == 1
        prompt = judge.requests[-1]["messages"][-1]["content"]
        assert prompt.count(QUESTION) == 2  # both turns of the conversation
    finally:
        pipeline.stop()


def test_runs_stored_by_one_insert_are_all_judged_however_many(
    embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One insert gives every run it touches the same `updated_at`: the search must get past
    an instant that holds more runs than one query reads (the demo's runs once went unjudged
    when a busy writer stored them in one batch with 300 other traces). The scores of the runs
    one query found are written in one insert (each insert into `scores` looks the scored calls
    up in `llm_calls`, a cost that grows with the store)."""
    service = f"crowd-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    config = EvaluationConfig(
        rules=[Rule(level="trace", where={"service": service}, evaluators=["no_tool_errors"])],
        run_quiet_period=0,
    )
    runs = RunEvaluation(config, embedded_store, compile_rules(config))
    try:
        crowd = [make_span(f"run {i}", {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT}) for i in range(450)]
        send(pipeline, service, crowd)  # one request, one insert: one instant for all 450
        _, [[instants]] = embedded_store.query(
            "SELECT uniqExact(updated_at) FROM assay.trace_summary WHERE trace_id IN "
            "(SELECT TraceId FROM assay.otel_traces WHERE ServiceName = {s:String})",
            {"s": service},
        )
        assert instants == 1
        inserted: list[int] = []
        insert_rows = embedded_store.insert_rows

        def counted(rows: Any, dedup_token: str | None = None) -> Any:
            if rows and isinstance(rows[0], ScoreRow):
                inserted.append(len(rows))
            return insert_rows(rows, dedup_token)

        monkeypatch.setattr(embedded_store, "insert_rows", counted)
        asyncio.run(runs.look())
        assert runs.stats.runs == 450
        # One insert per query's runs (at most 200 of them; other tests' runs in the shared
        # store share the first query), not one per run.
        assert sum(inserted) == 450 and len(inserted) == 3
        _, [[judged]] = embedded_store.query(
            "SELECT uniqExact(trace_id) FROM assay.scores WHERE source = 'online' "
            "AND level = 'trace' AND trace_id IN "
            "(SELECT TraceId FROM assay.otel_traces WHERE ServiceName = {s:String})",
            {"s": service},
        )
        assert judged == 450
        asyncio.run(runs.look())
        assert runs.stats.runs == 450  # nothing judged twice

        restarted = RunEvaluation(config, embedded_store, compile_rules(config))
        asyncio.run(restarted.look())
        assert restarted.stats.runs == 0  # it goes on after the last run judged
    finally:
        pipeline.stop()
