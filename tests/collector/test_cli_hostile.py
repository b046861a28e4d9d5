"""Stored text reaches a person's terminal through the CLI as text: rich markup in it is neither
read (`[/x]` stopped `assay query` with a traceback, `[link=...]` hid a link) nor are escape
sequences sent raw (they retitle the window, clear the screen, set the clipboard)."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.collector.test_cli import assay
from tests.conftest import RunningCollector

MARKUP_CLOSE = "gpt[/x]"  # rich: "closing tag '[/x]' doesn't match any open tag"
LINK = "[link=https://evil.example]support[/link]"
ESCAPES = "title\x1b]0;pwned\x1b\\ clear\x1b[2J ret\rurn"
SHOWN_ESCAPES = "title\\x1b]0;pwned\\x1b\\ clear\\x1b[2J ret\\rurn"


def _out(result: object) -> str:
    return f"{getattr(result, 'stdout', '')}{getattr(result, 'stderr', '')}"


def test_assay_query_prints_stored_markup_and_escapes_as_text(
    collector: RunningCollector,
) -> None:
    service = f"cli-hostile-{uuid.uuid4().hex[:8]}"
    attrs = {
        sc.OPERATION_NAME: "chat",
        sc.REQUEST_MODEL: MARKUP_CLOSE,
        sc.USER_ID: LINK,
        sc.PROMPT_NAME: ESCAPES,
    }
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            make_request(service, make_span(attrs=attrs))
        )
    sql = (
        f"SELECT model, user_id, prompt_name FROM assay.llm_calls WHERE service_name = '{service}'"
    )
    collector.wait_for_rows(sql, 1)
    result = assay("query", sql, url=collector.http_url)
    assert result.returncode == 0, _out(result)
    assert MARKUP_CLOSE in result.stdout and LINK in result.stdout
    assert SHOWN_ESCAPES in result.stdout
    assert "\x1b" not in result.stdout and "\r" not in result.stdout

    # An error message quoting the user's own input is text too.
    refused = assay("query", "SELECT * FROM file('[/x]\x1b[2J')", url=collector.http_url)
    assert refused.returncode == 1, _out(refused)
    assert "Traceback" not in refused.stderr and "\x1b" not in refused.stderr


def test_experiment_commands_print_stored_markup_and_escapes_as_text(
    collector: RunningCollector,
) -> None:
    name = f"{LINK}-{uuid.uuid4().hex[:6]}"
    dataset = f"cli-hostile-{uuid.uuid4().hex[:6]}"
    base = collector.http_url
    pushed = httpx.post(
        f"{base}/api/datasets",
        json={"name": dataset, "items": [{"input": ESCAPES, "expected": MARKUP_CLOSE}]},
    )
    assert pushed.status_code in (200, 201), pushed.text
    item_id = httpx.get(f"{base}/api/datasets/{dataset}").json()["items"][0]["id"]
    run_id = f"cli-hostile-{uuid.uuid4().hex[:8]}"
    started = time.time()
    recorded = httpx.post(
        f"{base}/api/experiments",
        json={
            "experiment_id": run_id,
            "name": name,
            "dataset_name": dataset,
            "dataset_version": pushed.json()["version"],
            "params": {"prompt": ESCAPES},
            "evaluators": {MARKUP_CLOSE: "1"},
            "started_at": started,
            "ended_at": started + 1,
            "status": "completed",
            "item_count": 1,
        },
    )
    assert recorded.status_code in (200, 201), recorded.text
    item = {
        "item_id": item_id,
        "output": f"{MARKUP_CLOSE} {ESCAPES}",
        "started_at": started,
        "scores": [{"name": MARKUP_CLOSE, "value": 1.0, "passed": True, "explanation": LINK}],
    }
    added = httpx.post(f"{base}/api/experiments/{run_id}/items", json={"items": [item]})
    assert added.status_code in (200, 201), added.text

    for args in (
        ("experiments", "show", run_id),
        ("experiments", "list", "--format", "table"),
        ("experiments", "list", "--format", "markdown"),
        ("experiments", "compare", run_id, run_id),
    ):
        result = assay(*args, url=base)
        assert result.returncode == 0, (args, _out(result))
        assert "\x1b" not in result.stdout and "\r" not in result.stdout, args
        assert LINK.split("]")[0] in result.stdout, args  # the markup is shown, not read
    shown = assay("experiments", "show", run_id, url=base).stdout
    assert MARKUP_CLOSE in shown and "\\x1b[2J" in shown
    assert json.loads(assay("experiments", "show", run_id, "--format", "json", url=base).stdout)
