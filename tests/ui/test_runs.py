"""Whole runs and conversations in a real browser: the trace page's waterfall and span details,
the sessions list and a session's turns, for agent runs in three dialects (OTel GenAI,
OpenInference, OpenLLMetry) sent as OTLP, and for the demo's agent service, instrumented by
Assay itself, running against the fake provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from playwright.sync_api import Page, expect

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.profiles import AGENT_FAILING_TOOL, AGENT_NAME
from tests.collector.agent_traces import (
    ANSWER,
    ARGUMENTS,
    QUESTION,
    RESULT,
    AgentRun,
    genai_run,
    openinference_run,
    openllmetry_run,
)
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector
from tests.ui.conftest import screenshot

MS = 1_000_000


@dataclass
class Runs:
    service: str
    session: str  # two GenAI runs, one after the other
    first: AgentRun
    second: AgentRun
    openinference: AgentRun
    openllmetry: AgentRun

    def by_dialect(self, name: str) -> AgentRun:
        return {"genai": self.first, "openinference": self.openinference}.get(
            name, self.openllmetry
        )


@pytest.fixture(scope="module")
def runs(collector: RunningCollector) -> Runs:
    tag = uuid.uuid4().hex[:8]
    session = f"conv-{tag}"
    now = time.time_ns()
    found = Runs(
        service=f"agents-{tag}",
        session=session,
        first=genai_run(session, start_ns=now - 60_000 * MS),
        second=genai_run(session, start_ns=now - 30_000 * MS),
        openinference=openinference_run(f"oi-{tag}"),
        openllmetry=openllmetry_run(f"ol-{tag}"),
    )
    every = [found.first, found.second, found.openinference, found.openllmetry]
    spans = [span for run in every for span in run.spans]
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request(found.service, *spans))
    ids = ", ".join(f"'{run.trace_hex}'" for run in every)
    collector.wait_for_rows(
        f"SELECT trace_id FROM assay.trace_summary WHERE trace_id IN ({ids}) AND spans = 5",
        len(every),
    )
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.tool_calls WHERE service_name = '{found.service}'", 4 + 1 + 1
    )
    return found


def _fits(page: Page) -> None:
    """The page is no wider than the window, at a laptop's width and a narrow one."""
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 900})
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{page.url} is {wide} px wide at {width}"


def depths(page: Page) -> list[int]:
    return [
        int(d) for d in page.locator("tr.span").evaluate_all("rs => rs.map(r => r.dataset.depth)")
    ]


def test_a_genai_run_shows_as_a_tree_with_timing_tokens_cost_and_errors(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    run = runs.first
    page.goto(f"{collector.http_url}/traces/{run.trace_hex}")
    expect(page.locator("h1")).to_contain_text(f"invoke_agent {run.agent}")
    # The agent first, its four steps under it in the order they started.
    names = page.locator("tr.span td.name a").all_inner_texts()
    assert names == [
        f"invoke_agent {run.agent}",
        "chat gpt-4o-mini",
        f"execute_tool {run.tool}",
        f"execute_tool {run.tool}",
        "chat gpt-4o-mini",
    ]
    assert depths(page) == [0, 1, 1, 1, 1]
    kinds = page.locator("tr.span .kind").all_inner_texts()
    assert kinds == ["agent", "llm", "tool", "tool", "llm"]
    # The failed tool call is marked; the others are not.
    errors = page.locator("tr.span.error td.name a").all_inner_texts()
    assert errors == [f"execute_tool {run.tool}"]
    # Bars sit where the spans ran: the second LLM call starts 40 ms into a 100 ms run.
    bar = page.locator("tr.span").nth(4).locator(".bar")
    style = bar.get_attribute("style") or ""
    assert "left: 40.000%" in style and "width: 50.000%" in style
    # Tokens per span and for the whole run.
    expect(page.locator("tr.span").nth(1).locator("td.num").nth(1)).to_have_text("100 / 20")
    facts = page.locator("section.facts dl")
    expect(facts).to_contain_text("300 in · 60 out")
    expect(facts).to_contain_text("2 LLM calls · 2 tool calls · 1 error")
    expect(facts.locator(f"a[href='/sessions/{runs.session}']")).to_be_visible()
    screenshot(page, "trace")


def test_clicking_a_tool_span_shows_its_arguments_result_and_error(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    page.goto(f"{collector.http_url}/traces/{runs.first.trace_hex}")
    page.locator("tr.span td.name a").nth(3).click()  # the tool call that worked
    detail = page.locator("#span")
    expect(detail.locator("pre.arguments")).to_have_text(json.dumps(ARGUMENTS, indent=2))
    expect(detail.locator("pre.result")).to_have_text(json.dumps(RESULT, indent=2))
    expect(page.locator("tr.span.this td.name a")).to_have_text(f"execute_tool {runs.first.tool}")
    page.locator("tr.span td.name a").nth(2).click()  # the one that timed out
    expect(detail.locator("h2 .status")).to_have_text("error")
    expect(detail).to_contain_text("TimeoutError")
    # Its attributes, as the span carried them.
    expect(detail.locator("table.span-attrs")).to_contain_text("gen_ai.tool.call.id")
    _fits(page)


def test_an_llm_span_shows_its_messages_and_links_to_its_call(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    page.goto(f"{collector.http_url}/traces/{runs.first.trace_hex}")
    page.locator("tr.span td.name a").nth(1).click()
    detail = page.locator("#span")
    expect(detail.locator(".msg.user .text")).to_have_text(QUESTION)
    expect(detail.locator(".msg.assistant .text")).to_have_text(ANSWER)
    detail.locator("a.call-link").click()
    # The call page lists its trace's spans in one vocabulary: kinds, ok or error (not Unset).
    spans = page.locator("table.spans tbody tr")
    expect(spans).to_have_count(5)
    assert spans.locator("td:nth-child(2)").all_inner_texts() == [
        "agent",
        "llm",
        "tool",
        "tool",
        "llm",
    ]
    expect(page.locator("table.spans tr.error .status")).to_have_text("error")
    expect(page.locator("table.spans tr.this")).to_contain_text("chat gpt-4o-mini")
    # ... and the call page links back to its trace, that span chosen.
    page.locator("a.trace-link").click()
    expect(page.locator("tr.span.this td.name a")).to_have_text("chat gpt-4o-mini")
    expect(page.locator("tr.span.this")).to_have_attribute("data-depth", "1")


@pytest.mark.parametrize(
    ("dialect", "tree"),
    [
        # OpenInference: agent → LLM, chain (→ tool), retriever; the tool arrived before its
        # parent chain, and still sits under it.
        ("openinference", [("agent", 0), ("llm", 1), ("chain", 1), ("tool", 2), ("retriever", 1)]),
        # OpenLLMetry: workflow → agent → task → tool, and the agent's LLM call.
        ("openllmetry", [("workflow", 0), ("agent", 1), ("chain", 2), ("tool", 3), ("llm", 2)]),
    ],
)
def test_other_dialects_runs_show_as_trees_in_one_vocabulary(
    page: Page,
    collector: RunningCollector,
    runs: Runs,
    dialect: str,
    tree: list[tuple[str, int]],
) -> None:
    run = runs.by_dialect(dialect)
    page.goto(f"{collector.http_url}/traces/{run.trace_hex}")
    kinds = page.locator("tr.span .kind").all_inner_texts()
    assert list(zip(kinds, depths(page), strict=True)) == tree
    tool = [k for k, _ in tree].index("tool")
    page.locator("tr.span td.name a").nth(tool).click()
    expect(page.locator("#span pre.result")).to_have_text(json.dumps(RESULT, indent=2))
    expect(page.locator("#span pre.arguments")).to_have_text(json.dumps(ARGUMENTS, indent=2))
    expect(page.locator("h1")).to_contain_text(f"agent {run.agent}")
    _fits(page)
    screenshot(page, f"trace-{dialect}")


def test_a_session_shows_its_runs_in_order_with_their_scores(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    # A person's judgement of the second run as a whole (a trace-level score).
    httpx.post(
        f"{collector.http_url}/api/feedback",
        json={"trace_id": runs.second.trace_hex, "value": 0, "comment": "looped"},
    ).raise_for_status()
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.scores WHERE trace_id = '{runs.second.trace_hex}'", 1
    )
    page.goto(f"{collector.http_url}/sessions?service={runs.service}")
    expect(page.locator("tr.session")).to_have_count(3)  # the conversation and two single runs
    row = page.locator(f"tr.session[data-session='{runs.session}']")
    expect(row.locator("td.num").first).to_have_text("2")
    row.locator("td.id a").click()
    turns = page.locator(".turn")
    expect(turns).to_have_count(2)
    assert turns.evaluate_all("ts => ts.map(t => t.dataset.trace)") == [
        runs.first.trace_hex,
        runs.second.trace_hex,
    ]
    expect(turns.nth(0).locator(".msg.user")).to_contain_text(QUESTION)
    expect(turns.nth(0).locator(".msg.assistant")).to_contain_text(ANSWER)
    expect(turns.nth(1).locator(".badge.human")).to_have_text("👎 bad")
    expect(page.locator("section.facts")).to_contain_text("4 LLM calls · 4 tool calls · 2 errors")
    _fits(page)
    screenshot(page, "session")
    turns.nth(1).locator("a.trace-link").click()
    expect(page.locator("h1")).to_contain_text("invoke_agent")
    assert runs.second.trace_hex in page.url


def test_the_sessions_list_filters_by_user_and_time(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    page.goto(f"{collector.http_url}/sessions?service={runs.service}&user_id=u-1")
    sessions = page.locator("tr.session").evaluate_all("rs => rs.map(r => r.dataset.session)")
    # u-1 made the GenAI conversation's calls; the OpenInference run names no user.
    assert runs.session in sessions
    assert f"oi-{runs.session.split('-')[1]}" not in sessions
    page.goto(
        f"{collector.http_url}/sessions?service={runs.service}&since=2000-01-01&until=2000-01-02"
    )
    expect(page.locator("tr.session")).to_have_count(0)
    expect(page.locator("td.empty")).to_contain_text("No session")
    page.goto(f"{collector.http_url}/sessions?service={runs.service}")
    _fits(page)


def test_unknown_traces_and_sessions_get_a_clear_page(
    page: Page, collector: RunningCollector, runs: Runs
) -> None:
    # A random id: the session's collector holds other tests' spans, hostile ones included.
    response = page.goto(f"{collector.http_url}/traces/{uuid.uuid4().hex}")
    assert response is not None and response.status == 404
    expect(page.locator("main")).to_contain_text("no span of trace")
    response = page.goto(f"{collector.http_url}/sessions/nobody-{uuid.uuid4().hex}")
    assert response is not None and response.status == 404
    response = page.goto(f"{collector.http_url}/sessions?since=yesterday-ish")
    assert response is not None and response.status == 400


def test_the_api_gives_a_trace_and_a_session(collector: RunningCollector, runs: Runs) -> None:
    body = httpx.get(f"{collector.http_url}/api/traces/{runs.openllmetry.trace_hex}").json()
    assert body["summary"]["agent_name"] == runs.openllmetry.agent
    assert [(s["kind"], s["depth"]) for s in body["spans"]][:2] == [("workflow", 0), ("agent", 1)]
    body = httpx.get(f"{collector.http_url}/api/sessions/{runs.session}").json()
    assert [t["trace_id"] for t in body["turns"]] == [runs.first.trace_hex, runs.second.trace_hex]
    assert body["turns"][0]["question"] == QUESTION
    missing = httpx.get(f"{collector.http_url}/api/traces/{uuid.uuid4().hex}")
    assert missing.status_code == 404


def test_a_cycle_of_parent_ids_shows_every_span_once(
    page: Page, collector: RunningCollector
) -> None:
    """A hostile or broken client can send span A with parent B and B with parent A: no root
    reaches them. The trace page and the API show each span once, the cycle's earliest span
    standing for its root (the page answered 500 on such a trace)."""
    trace, root, a, b, c = (
        os.urandom(16),
        os.urandom(8),
        os.urandom(8),
        os.urandom(8),
        os.urandom(8),
    )
    now = time.time_ns()
    spans = [
        make_span("root", trace_id=trace, span_id=root, start_ns=now),
        make_span("A", trace_id=trace, span_id=a, parent_span_id=b, start_ns=now + MS),
        make_span("B", trace_id=trace, span_id=b, parent_span_id=c, start_ns=now + 2 * MS),
        make_span("C", trace_id=trace, span_id=c, parent_span_id=a, start_ns=now + 3 * MS),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request("cycles", *spans))
    collector.wait_for_rows(f"SELECT 1 FROM assay.trace_spans WHERE trace_id = '{trace.hex()}'", 4)

    body = httpx.get(f"{collector.http_url}/api/traces/{trace.hex()}").json()
    assert [(s["name"], s["depth"]) for s in body["spans"]] == [
        ("root", 0),
        ("A", 0),
        ("C", 1),
        ("B", 2),
    ]
    response = page.goto(f"{collector.http_url}/traces/{trace.hex()}")
    assert response is not None and response.status == 200
    assert depths(page) == [0, 0, 1, 2]
    expect(page.locator("tr.span")).to_have_count(4)


# --- the demo's agent, instrumented by Assay ---------------------------------------------------
@pytest.fixture(scope="module")
def demo_agent(collector: RunningCollector) -> Iterator[str]:
    """The demo's agent service run against the fake provider, exporting to the collector: its
    service name, once its runs are stored."""
    service = f"travel-agent-{uuid.uuid4().hex[:8]}"
    with FakeOpenAI(latency=0.0) as fake:
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "ASSAY_DEMO_BASE_URL": fake.base_url,
            "ASSAY_DEMO_CALLS": "40",
            "ASSAY_DEMO_SEED": "4",  # its runs include a failed book_hotel, tried again
        }
        env.pop("OTEL_TRACES_EXPORTER", None)
        done = subprocess.run(
            [sys.executable, "-m", "assay.collector.demo.agent"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    collector.wait_for_rows(
        "SELECT 1 FROM assay.trace_summary WHERE trace_id IN (SELECT trace_id FROM"
        f" assay.trace_summaries WHERE has(services, '{service}')) AND tool_errors > 0",
        1,
    )
    yield service


@pytest.mark.subprocess
def test_the_demo_agents_run_shows_its_tools_llm_calls_and_the_failed_tool(
    page: Page, collector: RunningCollector, demo_agent: str
) -> None:
    (run,) = collector.query(
        "SELECT trace_id, llm_calls, tool_calls, spans FROM assay.trace_summary WHERE trace_id IN"
        f" (SELECT trace_id FROM assay.trace_summaries WHERE has(services, '{demo_agent}'))"
        " AND tool_errors > 0 ORDER BY start LIMIT 1"
    )
    page.goto(f"{collector.http_url}/traces/{run['trace_id']}")
    expect(page.locator("h1")).to_contain_text(f"invoke_agent {AGENT_NAME}")
    rows = page.locator("tr.span")
    expect(rows).to_have_count(int(run["spans"]))
    kinds = page.locator("tr.span .kind").all_inner_texts()
    assert kinds[0] == "agent" and depths(page)[0] == 0
    assert kinds.count("llm") == run["llm_calls"] and kinds.count("tool") == run["tool_calls"]
    assert set(depths(page)[1:]) == {1}  # every step right under the agent
    failed = page.locator("tr.span.error td.name a")
    expect(failed.first).to_have_text(f"execute_tool {AGENT_FAILING_TOOL}")
    failed.first.click()
    detail = page.locator("#span")
    expect(detail.locator("pre.arguments")).to_contain_text('"city"')
    expect(detail).to_contain_text("ToolTimeout")
    # The LLM call that asked for the tool: its messages, the tool call among them.
    page.locator("tr.span.kind-llm td.name a").first.click()
    expect(detail.locator(".msg.user").first).to_be_visible()
    expect(detail.locator(".part-title").first).to_contain_text("calls")
    _fits(page)
    screenshot(page, "trace-demo-agent")


@pytest.mark.subprocess
def test_the_demo_agents_conversation_shows_every_turn(
    page: Page, collector: RunningCollector, demo_agent: str
) -> None:
    (conversation,) = collector.query(
        "SELECT session_id, count() AS turns FROM assay.trace_summary WHERE trace_id IN"
        f" (SELECT trace_id FROM assay.trace_summaries WHERE has(services, '{demo_agent}'))"
        " GROUP BY session_id ORDER BY turns DESC, session_id LIMIT 1"
    )
    assert conversation["turns"] >= 2
    page.goto(f"{collector.http_url}/sessions?service={demo_agent}")
    page.locator(f"tr.session[data-session='{conversation['session_id']}'] td.id a").click()
    turns = page.locator(".turn")
    expect(turns).to_have_count(int(conversation["turns"]))
    for n in range(int(conversation["turns"])):
        expect(turns.nth(n).locator(".msg.user .text")).not_to_be_empty()
        expect(turns.nth(n).locator(".msg.assistant .text")).not_to_be_empty()
    _fits(page)
    screenshot(page, "session-demo-agent")
