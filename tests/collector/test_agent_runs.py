"""Agent runs from every dialect in one vocabulary: span kinds, tool calls as rows, and a trace
summary that stays right whatever order and batches the spans arrive in."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from typing import Any

import pytest

from assay.collector.normalize import agents
from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.agents import READERS, agent_rows
from assay.collector.normalize.otlp import attributes
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.pipeline import Pipeline
from assay.collector.receivers.content import redact_request
from assay.collector.redaction import Redactor
from assay.collector.settings import CollectorSettings
from assay.collector.spool import MemorySpool
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.agent_traces import (
    ARGUMENTS,
    RESULT,
    AgentRun,
    genai_run,
    openinference_run,
    openllmetry_run,
)
from tests.collector.otlp_builders import make_request, make_span

SETTINGS = CollectorSettings(
    flush_interval=0.05, retry_initial=0.01, retry_max=0.05, shutdown_timeout=5
)


def normalized(run: AgentRun, service: str = "agents") -> TraceBatch:
    batch = normalize_traces(make_request(service, *run.spans))
    batch.link()
    return batch


def kinds_by_name(batch: TraceBatch) -> dict[str, str]:
    return {span.span_name: span.kind for span in batch.spans}


def test_genai_agent_spans_become_kinds_and_tool_rows() -> None:
    run = genai_run()
    batch = normalized(run)
    assert [span.kind for span in batch.spans] == [
        kinds.AGENT,
        kinds.LLM,
        kinds.TOOL,
        kinds.TOOL,
        kinds.LLM,
    ]
    assert batch.spans[0].agent_name == run.agent
    failed, ok = batch.tool_calls
    assert (failed.tool_name, failed.status, failed.error_type) == (
        run.tool,
        "error",
        "TimeoutError",
    )
    assert (ok.tool_name, ok.status, ok.tool_call_id, ok.tool_type) == (
        run.tool,
        "ok",
        "call-2",
        "function",
    )
    assert json.loads(ok.arguments) == ARGUMENTS and json.loads(ok.result) == RESULT
    assert ok.duration_ms == pytest.approx(5.0)
    # the tool spans name no agent: they take the one that ran them
    assert {tool.agent_name for tool in batch.tool_calls} == {run.agent}
    assert ok.parent_span_id == batch.spans[0].span_id and ok.trace_id == run.trace_hex
    assert ok.session_id == "" and batch.spans[1].session_id == "s-1"


def test_openinference_span_kinds() -> None:
    run = openinference_run()
    batch = normalized(run)
    assert kinds_by_name(batch) == {
        "agent": kinds.AGENT,
        "ChatCompletion": kinds.LLM,
        run.tool: kinds.TOOL,
        "plan": kinds.CHAIN,
        "retrieve": kinds.RETRIEVER,
    }
    (tool,) = batch.tool_calls
    assert tool.tool_name == run.tool and tool.dialect == "openinference"
    assert json.loads(tool.arguments) == ARGUMENTS and json.loads(tool.result) == RESULT
    # the agent two levels up, whatever order the spans came in
    assert tool.agent_name == run.agent


def test_openllmetry_span_kinds_and_keyword_arguments() -> None:
    run = openllmetry_run()
    batch = normalized(run)
    assert kinds_by_name(batch) == {
        "trip.workflow": kinds.WORKFLOW,
        f"{run.agent}.agent": kinds.AGENT,
        "choose.task": kinds.CHAIN,
        f"{run.tool}.tool": kinds.TOOL,
        "openai.chat": kinds.LLM,  # no kind of its own: it is an LLM call
    }
    (tool,) = batch.tool_calls
    assert json.loads(tool.arguments) == ARGUMENTS  # the keywords, not {"args": [], ...}
    assert tool.agent_name == run.agent and tool.session_id == ""
    llm = next(span for span in batch.spans if span.llm)
    assert (llm.input_tokens, llm.output_tokens, llm.session_id) == (30, 5, "s-3")


def test_a_guardrail_span_of_assays_agent_instrumentation_is_a_guardrail() -> None:
    """The GenAI conventions have no guardrail operation; Assay's OpenAI Agents SDK spans mark
    theirs with the guardrail's name."""
    span = make_span("guardrail no_secrets", {sc.GUARDRAIL_NAME: "no_secrets"})
    batch = normalize_traces(make_request("svc", span))
    batch.link()
    (row,) = batch.spans
    assert (row.kind, row.dialect) == (kinds.GUARDRAIL, "genai")
    assert batch.tool_calls == []


def test_a_plain_span_is_a_span() -> None:
    batch = normalize_traces(make_request("svc", make_span("GET /orders", {"http.method": "GET"})))
    batch.link()
    (span,) = batch.spans
    assert (span.kind, span.dialect, span.status) == (kinds.SPAN, "", "ok")
    assert batch.tool_calls == []


class _Recording(dict[str, Any]):
    """A span's attributes that note every name read of them."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_each_reader_names_every_attribute_its_span_kind_reads() -> None:
    """`agent_rows` takes a span with none of MARK_KEYS for a plain span without asking the
    readers: each reader's KIND_KEYS must hold every name its `span_kind` reads."""
    spans = [
        {},
        {"http.route": "/a", "user.name": "x"},
        *(attributes(s.attributes) for s in (*genai_run().spans, *openinference_run().spans)),
        *(attributes(s.attributes) for s in openllmetry_run().spans),
        {sc.OPERATION_NAME: "unknown", sc.GUARDRAIL_NAME: "g"},
    ]
    for reader in READERS:
        for attrs in spans:
            recording = _Recording(attrs)
            reader.span_kind(recording)
            assert recording.read <= reader.KIND_KEYS, (reader.NAME, recording.read)


def test_a_span_without_marks_is_the_same_plain_row_either_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = [
        ({"http.route": "/a", "http.response.status_code": 200}, False),
        ({"http.route": "/b", "http.response.status_code": 500}, True),
        ({}, False),
    ]

    def rows() -> list[Any]:
        return [
            agent_rows(
                attrs,
                trace_id="ab" * 16,
                span_id="cd" * 8,
                parent_span_id="",
                start_ns=10,
                end_ns=5,
                service_name="web",
                span_name="GET /a",
                is_error=error,
                status_message="boom" if error else "",
            )
            for attrs, error in plain
        ]

    quick = rows()
    # Every name a mark: each reader asked, as for a span that has some.
    monkeypatch.setattr(agents, "MARK_KEYS", frozenset(k for a, _ in plain for k in a))
    assert rows() == quick
    assert [span.status for span, _ in quick] == ["ok", "error", "ok"]
    assert all(span.kind == kinds.SPAN and tool is None for span, tool in quick)


def test_a_langgraph_graph_names_the_agent_of_its_run() -> None:
    """OpenInference's LangChain spans name no agent; LangGraph marks its graph's span (named
    after the graph) and its nodes' spans (naming their node; a sub-graph run as a node too)."""
    trace, graph_id, node_id = os.urandom(16), os.urandom(8), os.urandom(8)
    chain = {"openinference.span.kind": "CHAIN"}
    spans = [
        make_span(
            "forecaster",
            {**chain, "metadata": json.dumps({"ls_integration": "langgraph"})},
            trace_id=trace,
            span_id=graph_id,
        ),
        make_span(
            "inner-graph",
            {
                **chain,
                "metadata": json.dumps({"ls_integration": "langgraph", "langgraph_node": "n"}),
            },
            trace_id=trace,
            span_id=node_id,
            parent_span_id=graph_id,
        ),
        make_span(
            "weather",
            {"openinference.span.kind": "TOOL", "tool.name": "weather"},
            trace_id=trace,
            parent_span_id=node_id,
        ),
        make_span("RunnableSequence", chain),  # plain LangChain: no graph, no agent
    ]
    batch = normalize_traces(make_request("svc", *spans))
    batch.link()
    agents = {span.span_name: span.agent_name for span in batch.spans}
    assert agents == {
        "forecaster": "forecaster",
        "inner-graph": "",
        "weather": "",
        "RunnableSequence": "",
    }
    (tool,) = batch.tool_calls
    assert tool.agent_name == "forecaster"  # the graph above its node


@pytest.mark.parametrize("make_run", [genai_run, openinference_run, openllmetry_run])
def test_tool_arguments_and_results_are_redacted_content(make_run: Any) -> None:
    """The receiver redacts what each dialect declares as content: a tool call's arguments and
    result reach the tool_calls row masked, still JSON."""
    run = make_run()
    request = make_request("svc", *run.spans)
    for span in request.resource_spans[0].scope_spans[0].spans:
        for attribute in span.attributes:
            text = attribute.value.string_value
            if text.startswith("{") and ("A-17" in text or "shipped" in text):
                attribute.value.string_value = text.replace("A-17", "jane.doe@example.com")
    redact_request(request, Redactor(["email"]))
    batch = normalize_traces(request)
    batch.link()
    tool = batch.tool_calls[-1]
    assert "jane.doe@example.com" not in tool.arguments + tool.result
    assert "[REDACTED:email]" in tool.arguments and json.loads(tool.arguments)


# --- the store: tool rows and trace summaries -----------------------------------------------------


def summary(store: EmbeddedStore, trace_id: str) -> dict[str, object]:
    names, rows = store.query(
        "SELECT * FROM assay.trace_summary WHERE trace_id = {t:String}", {"t": trace_id}
    )
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0], strict=True))


def send(pipeline: Pipeline, service: str, spans: list[object]) -> None:
    request = make_request(service, *spans)  # type: ignore[arg-type]
    asyncio.run(pipeline.submit("traces", request.SerializeToString(), len(spans)))
    assert pipeline.flush(20)


def test_the_trace_summary_is_the_same_whatever_order_and_batches(
    embedded_store: EmbeddedStore,
) -> None:
    """One run sent whole, the same run sent span by span in a shuffled order with one span sent
    twice: the same summary, tokens and cost summed once per LLM call."""
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    service = f"agents-{uuid.uuid4().hex[:8]}"
    whole = genai_run(session="conv-1")
    send(pipeline, service, whole.spans)
    pieces = genai_run(session="conv-1")
    shuffled = list(pieces.spans)
    random.Random(7).shuffle(shuffled)
    for span in [*shuffled, shuffled[0]]:
        send(pipeline, service, [span])
    pipeline.stop()

    expected = summary(embedded_store, whole.trace_hex)
    got = summary(embedded_store, pieces.trace_hex)
    for row in (expected, got):
        assert row["root_name"] == f"invoke_agent {whole.agent}"
        assert (row["root_kind"], row["status"], row["has_root"]) == (kinds.AGENT, "ok", True)
        assert row["service_name"] == service and row["agent_name"] == whole.agent
        assert (row["spans"], row["llm_calls"], row["tool_calls"]) == (5, 2, 2)
        assert (row["errors"], row["tool_errors"]) == (1, 1)
        assert (row["input_tokens"], row["output_tokens"]) == (300, 60)
        assert (row["user_id"], row["session_id"]) == ("u-1", "conv-1")
        assert row["duration_ms"] == pytest.approx(100.0)
    assert expected["cost_usd"] == pytest.approx(got["cost_usd"])
    assert float(expected["cost_usd"]) > 0  # type: ignore[arg-type]
    _, rows = embedded_store.query(
        "SELECT count(), countIf(status = 'error') FROM assay.tool_calls FINAL "
        "WHERE trace_id IN ({a:String}, {b:String})",
        {"a": whole.trace_hex, "b": pieces.trace_hex},
    )
    assert rows == [(4, 2)]


def test_a_late_span_and_a_root_that_arrives_last_update_the_summary(
    embedded_store: EmbeddedStore,
) -> None:
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    service = f"late-{uuid.uuid4().hex[:8]}"
    run = openinference_run()
    root, *children = run.spans
    send(pipeline, service, children[:2])
    before = summary(embedded_store, run.trace_hex)
    assert before["has_root"] is False and before["spans"] == 2
    send(pipeline, service, [root, *children[2:]])
    after = summary(embedded_store, run.trace_hex)
    pipeline.stop()
    assert after["has_root"] is True and after["root_name"] == "agent"
    assert after["root_kind"] == kinds.AGENT and after["agent_name"] == run.agent
    assert (after["spans"], after["llm_calls"], after["tool_calls"]) == (5, 1, 1)
    assert after["session_id"] == "s-2"
    assert after["updated_at"] >= before["updated_at"]  # type: ignore[operator]
    assert after["cost_usd"] is not None
