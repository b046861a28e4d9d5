"""Spans from the real peer instrumentations become the same `llm_calls` row as Assay's own.

Each peer instruments the real `openai` client in its own venv (their OpenTelemetry pins
conflict with ours and with each other; see tests/peers/venvs.py), calls the local fake OpenAI
server and exports with the standard OTLP/HTTP exporter to the real collector. The same call made
under Assay's instrumentation is the reference row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.apps.peer_app import MESSAGES
from tests.conftest import RunningCollector
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.peers.venvs import peer_python

# The first run builds each peer's venv from the package registry (a minute or two each).
pytestmark = [pytest.mark.peers, pytest.mark.timeout(900)]

APP = Path(__file__).resolve().parents[1] / "apps" / "peer_app.py"
# Message content on, in the span: the official instrumentation's switches.
OPENAI_V2_SPAN_CONTENT = {
    "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
}
# The same call's columns that must not depend on who instrumented it.
SAME = (
    "operation",
    "provider",
    "request_model",
    "response_model",
    "model",
    "response_id",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_source",
    "finish_reasons",
    "status",
)


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def run_app(
    peer: str,
    collector: RunningCollector,
    fake: FakeOpenAI,
    env: dict[str, str] | None = None,
    *extra: str,
) -> str:
    """Run the one-call app under `peer`; returns the service name its spans carry."""
    service = f"interop-{peer}-{uuid.uuid4().hex[:8]}"
    python = sys.executable if peer == "assay" else str(peer_python(peer))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))},
        "ASSAY_TEST_BASE_URL": fake.base_url,
        "OTEL_SERVICE_NAME": service,
        # Assay's SDK exports over gRPC, the peers' apps over HTTP: both receivers are exercised.
        "OTEL_EXPORTER_OTLP_ENDPOINT": (
            collector.grpc_endpoint if peer == "assay" else collector.http_url
        ),
        **(env or {}),
    }
    done = subprocess.run(
        [python, str(APP), peer, *extra],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{peer} app failed:\n{done.stdout}\n{done.stderr}"
    return service


def call_row(collector: RunningCollector, service: str) -> dict[str, Any]:
    (row,) = collector.wait_for_rows(
        "SELECT * EXCEPT (timestamp) FROM assay.llm_calls_with_messages"
        f" WHERE service_name = '{service}'",
        1,
    )
    return row


@pytest.fixture(scope="module")
def assay_row(collector: RunningCollector, fake_openai: FakeOpenAI) -> dict[str, Any]:
    return call_row(collector, run_app("assay", collector, fake_openai))


def assert_same_call(row: dict[str, Any], reference: dict[str, Any]) -> None:
    assert {c: row[c] for c in SAME} == {c: reference[c] for c in SAME}
    for column in ("input_messages", "output_messages"):
        assert json.loads(row[column]) == json.loads(reference[column]), column
    assert reference["cost_usd"] is not None and reference["input_tokens"] > 0


@pytest.mark.parametrize(
    ("peer", "dialect", "env"),
    [
        ("openllmetry", "openllmetry", {}),
        ("openinference", "openinference", {}),
        ("openai-v2", "genai", OPENAI_V2_SPAN_CONTENT),
        ("openlit", "openlit", {}),
    ],
)
def test_a_peers_call_becomes_the_same_row_as_assays(
    peer: str,
    dialect: str,
    env: dict[str, str],
    collector: RunningCollector,
    fake_openai: FakeOpenAI,
    assay_row: dict[str, Any],
) -> None:
    row = call_row(collector, run_app(peer, collector, fake_openai, env))
    assert row["dialect"] == dialect and assay_row["dialect"] == "genai"
    assert_same_call(row, assay_row)


def test_openlits_own_cost_is_kept_beside_the_price_tables(
    collector: RunningCollector, fake_openai: FakeOpenAI, assay_row: dict[str, Any]
) -> None:
    row = call_row(collector, run_app("openlit", collector, fake_openai))
    # Offline, OpenLIT cannot fetch its price list and reports 0: kept, but not the cost.
    assert row["reported_cost_usd"] == 0.0
    assert row["cost_usd"] == assay_row["cost_usd"] and row["cost_source"] == "priced"
    assert row["time_to_first_token_ms"] is not None and row["time_to_first_token_ms"] > 0


def test_messages_sent_only_as_log_records_are_joined_to_their_call(
    collector: RunningCollector, fake_openai: FakeOpenAI, assay_row: dict[str, Any]
) -> None:
    env = {
        **OPENAI_V2_SPAN_CONTENT,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY",
    }
    service = run_app("openai-v2", collector, fake_openai, env)
    (span,) = collector.wait_for_rows(
        f"SELECT SpanAttributes FROM assay.otel_traces WHERE ServiceName = '{service}'", 1
    )
    assert "gen_ai.input.messages" not in span["SpanAttributes"]  # the messages came as logs
    assert_same_call(call_row(collector, service), assay_row)


def test_openllmetrys_anthropic_call_is_one_row_with_the_apis_usage_and_our_price(
    collector: RunningCollector, fake_openai: FakeOpenAI
) -> None:
    with FakeAnthropic() as fake_anthropic:
        env = {"ASSAY_TEST_ANTHROPIC_URL": fake_anthropic.base_url}
        service = run_app("openllmetry", collector, fake_openai, env, "anthropic")
    # The anthropic SDK traces its own calls too (in a trace of its own): two spans, one call,
    # one row.
    spans = collector.wait_for_rows(
        f"SELECT SpanName FROM assay.otel_traces WHERE ServiceName = '{service}'"
        f" AND SpanAttributes['{sc.PROVIDER_NAME}'] = 'anthropic'",
        2,
    )
    rows = collector.wait_for_rows(
        "SELECT * FROM assay.llm_calls_with_messages"
        f" WHERE service_name = '{service}' AND provider = 'anthropic'",
        1,
    )
    assert len(rows) == 1, (spans, rows)
    (row,) = rows
    sent = {
        "model": "claude-sonnet-4-5",
        "system": MESSAGES[0]["content"],
        "messages": MESSAGES[1:],
    }
    answer = fake_anthropic.message(sent)
    usage = answer["usage"]
    assert row["dialect"] == "genai"  # OpenLLMetry's anthropic spans: the current names only
    assert (row["request_model"], row["model"]) == (sent["model"], answer["model"])
    assert (row["input_tokens"], row["output_tokens"]) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert row["cost_usd"] == pytest.approx(
        pricing.cost_usd(
            answer["model"],
            usage["input_tokens"],
            usage["output_tokens"],
            0,
            0,
            sc.PROVIDER_ANTHROPIC,
        )
    )
    assert json.loads(row["input_messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": MESSAGES[1]["content"]}]}
    ]
    assert json.loads(row["system_instructions"]) == [
        {"type": "text", "content": MESSAGES[0]["content"]}
    ]
    (output,) = json.loads(row["output_messages"])
    assert output["parts"] == [{"type": "text", "content": answer["content"][0]["text"]}]


def test_the_official_instrumentations_genai_metrics_are_stored(
    collector: RunningCollector, fake_openai: FakeOpenAI, assay_row: dict[str, Any]
) -> None:
    service = run_app("openai-v2", collector, fake_openai, OPENAI_V2_SPAN_CONTENT)
    rows = collector.wait_for_rows(
        "SELECT MetricName, Attributes, Count, Sum FROM assay.otel_metrics_histogram"
        f" WHERE ServiceName = '{service}' ORDER BY MetricName",
        3,
    )
    tokens = {
        row["Attributes"][sc.TOKEN_TYPE]: row["Sum"]
        for row in rows
        if row["MetricName"] == sc.METRIC_TOKEN_USAGE
    }
    assert tokens == {"input": assay_row["input_tokens"], "output": assay_row["output_tokens"]}
    (duration,) = [r for r in rows if r["MetricName"] == sc.METRIC_OPERATION_DURATION]
    assert duration["Count"] == 1 and duration["Sum"] > 0
    assert duration["Attributes"][sc.REQUEST_MODEL] == assay_row["request_model"]
