"""Every value an application or an API client can store is shown as text on every page that
shows it: markup in service and model names, user and session ids, prompt names, attribute
keys, span names, tool names and arguments, status messages, grades' comments and authors,
dataset names and items, experiment names, params, outputs and score explanations."""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import quote

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from playwright.sync_api import Page

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector


def hostile(field: str) -> str:
    """Markup that runs script if inserted as HTML (in text, in a quoted attribute or in a
    textarea), template syntax, and a markdown link to a javascript: URL."""
    run = f"__pwned='{field}'"  # under 200 characters in all: names are limited to that
    return (
        f'{field}<script>{run}</script>"><img src=x onerror="{run}">\'>'
        f"<svg onload={run}></svg></textarea><b>{field}</b>{{{{7*7}}}}[a](javascript:{run})"
    )


NO_SLASH = """x"><img src=x onerror="__pwned='no-slash'">{{7*7}}"""
# What a page shows must not have become elements: these would come from the values above.
INJECTED = "main script, main img, main svg, main b, main iframe, main [onerror], main [onload]"


WIDTH = 1300  # the page fixture's viewport
WIDEST = (
    "Math.max(document.documentElement.scrollWidth, "
    "...[...document.querySelectorAll('main table')].map(t => t.getBoundingClientRect().right))"
)


def _post(collector: RunningCollector, path: str, body: object) -> dict[str, object]:
    response = httpx.post(f"{collector.http_url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def stored(collector: RunningCollector) -> dict[str, str]:
    """A run of hostile spans, a grade, a dataset and two experiment runs, all hostile."""
    service = hostile("service")
    session = hostile("session")
    trace, root, call, tool = os.urandom(16), os.urandom(8), os.urandom(8), os.urandom(8)
    now = time.time_ns()
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": hostile("system")}]},
        {"role": "user", "parts": [{"type": "text", "content": hostile("prompt")}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": hostile("tool-call-id"),
                    "name": hostile("tool-call-name"),
                    "arguments": {hostile("argument-key"): hostile("argument")},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": hostile("result")}],
        },
    ]
    llm = make_span(
        hostile("span-name"),
        {
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: hostile("provider"),
            sc.REQUEST_MODEL: hostile("model"),
            sc.RESPONSE_MODEL: hostile("response-model"),
            sc.USER_ID: hostile("user"),
            sc.SESSION_ID: session,
            sc.PROMPT_NAME: hostile("prompt-name"),
            sc.PROMPT_VERSION: hostile("prompt-version"),
            sc.TAGS: [hostile("tag")],
            sc.INPUT_MESSAGES: json.dumps(messages),
            sc.OUTPUT_MESSAGES: json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": hostile("answer")}]}]
            ),
            hostile("attribute-key"): hostile("attribute-value"),
        },
        trace_id=trace,
        span_id=call,
        parent_span_id=root,
        start_ns=now + 1_000_000,
        duration_ns=500_000_000,
        error=True,
        events=((hostile("event"), {hostile("event-key"): hostile("event-value")}),),
    )
    llm.status.message = hostile("status")
    tool_span = make_span(
        hostile("tool-span"),
        {
            sc.OPERATION_NAME: "execute_tool",
            sc.TOOL_NAME: hostile("tool"),
            sc.TOOL_CALL_ARGUMENTS: json.dumps({"q": hostile("tool-arguments")}),
        },
        trace_id=trace,
        span_id=tool,
        parent_span_id=root,
        start_ns=now + 600_000_000,
        duration_ns=100_000_000,
    )
    agent = make_span(
        hostile("root"),
        {
            sc.OPERATION_NAME: "invoke_agent",
            sc.AGENT_NAME: hostile("agent"),
            sc.SESSION_ID: session,
        },
        trace_id=trace,
        span_id=root,
        start_ns=now,
        duration_ns=900_000_000,
    )
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(make_request(service, agent, llm, tool_span))
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE span_id = '{call.hex()}'", 1)
    _post(
        collector,
        "/api/feedback",
        {"span_id": call.hex(), "value": 0, "comment": hostile("comment"), "author": "x<b>y</b>"},
    )

    # Names of datasets hold no '/' and at most 200 characters: markup without a closing tag.
    dataset = f"""d"><img src=x onerror="__pwned='dataset'">{{{{7*7}}}}-{uuid.uuid4().hex[:6]}"""
    items = [{"input": hostile("item-input"), "expected": hostile("item-expected")}]
    version = _post(collector, "/api/datasets", {"name": dataset, "items": items})["version"]
    item_id = httpx.get(f"{collector.http_url}/api/datasets/{quote(dataset, safe='')}").json()[
        "items"
    ][0]["id"]
    runs = []
    for run in ("a", "b"):
        run_id = f"hostile-{uuid.uuid4().hex[:8]}"
        started = time.time() - (60 if run == "a" else 0)
        _post(
            collector,
            "/api/experiments",
            {
                "experiment_id": run_id,
                "name": hostile(f"run-{run}"),
                "dataset_name": dataset,
                "dataset_version": version,
                "params": {hostile("param-key"): hostile("param")},
                "evaluators": {hostile("evaluator"): "1"},
                "started_at": started,
                "ended_at": started + 5,
                "status": "completed",
                "item_count": 1,
            },
        )
        result = {
            "item_id": item_id,
            "output": hostile(f"output-{run}"),
            "started_at": started + 1,
            "error": hostile("task-error"),
            "scores": [
                {
                    "name": hostile("evaluator"),
                    "value": 0.5 if run == "a" else 1.0,
                    "passed": run == "b",
                    "explanation": hostile("explanation"),
                }
            ],
        }
        _post(collector, f"/api/experiments/{run_id}/items", {"items": [result]})
        runs.append(run_id)
    return {
        "service": service,
        "session": session,
        "trace": trace.hex(),
        "call": call.hex(),
        "tool": tool.hex(),
        "dataset": dataset,
        "a": runs[0],
        "b": runs[1],
    }


def _pages(stored: dict[str, str]) -> list[str]:
    q = {k: quote(v, safe="") for k, v in stored.items()}
    return [
        f"/calls?service={q['service']}",
        f"/calls?text={quote('<script>', safe='')}&experiments=show",
        f"/calls/{q['call']}",
        f"/traces/{q['trace']}?span={q['call']}",
        f"/traces/{q['trace']}?span={q['tool']}",
        f"/sessions?user_id={quote(hostile('user'), safe='')}",
        f"/sessions/{q['session']}",
        f"/review?service={q['service']}",
        f"/review/next?service={q['service']}",
        "/datasets",
        f"/datasets/{q['dataset']}",
        "/experiments",
        f"/experiments/{q['a']}",
        f"/experiments/compare?a={q['a']}&b={q['b']}",
        "/agreement",
        # An error page naming what was asked for (no '/': it would take another route).
        f"/calls/{quote(NO_SLASH, safe='')}",
    ]


def test_no_page_runs_or_renders_a_stored_value_as_markup(
    page: Page, collector: RunningCollector, stored: dict[str, str]
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.context.add_cookies(
        [{"name": "assay_reviewer", "value": "rev", "url": collector.http_url}]
    )
    for path in _pages(stored):
        response = page.goto(f"{collector.http_url}{path}")
        assert response is not None and response.status in (200, 404), (path, response.status)
        assert page.evaluate("window.__pwned") is None, path
        injected = page.locator(INJECTED).count()
        assert injected == 0, f"{path}: {injected} elements made of stored values"
        # Long stored names (hundreds of characters, few spaces) do not widen the page or
        # push a table's columns past the window.
        widest = page.evaluate(WIDEST)
        assert widest <= WIDTH, f"{path}: {widest} px wide at {WIDTH}"
        # Template syntax is text too (it would read 49 if rendered as a template).
        if path.startswith(("/calls/", "/traces/", "/experiments/")) and response.ok:
            assert "{{7*7}}" in page.locator("main").inner_text(), path
    assert dialogs == []
    # The markdown link stays text: nothing on any page links to javascript:.
    assert page.locator("a[href^='javascript' i]").count() == 0


def test_the_call_page_shows_each_hostile_value_as_its_text(
    page: Page, collector: RunningCollector, stored: dict[str, str]
) -> None:
    page.goto(f"{collector.http_url}/calls/{stored['call']}")
    text = page.locator("main").inner_text()
    for field in ("prompt", "answer", "system", "argument", "result", "model", "comment"):
        assert hostile(field).split("<")[0] + "<script>" in text, field
