"""What the compose stack's `demo` profile does, without Docker: a real collector with the compose
settings (online evaluation, redaction), `assay demo` and the demo's experiments and reviews
sending through it. Every dashboard panel then has data, and no alert rule fires; each query
runs through the collector's own query API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from assay.collector.grafana.macros import interpolate, interval_for
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector
from tests.grafana.alert_rules import ROOT, checked_in_rules, evaluate
from tests.grafana.panel_queries import panel_queries, resolve_variables

pytestmark = pytest.mark.integration

COMPOSE_SETTINGS = ROOT / "deploy" / "collector" / "assay.yaml"
DEMO_EXTRAS = ROOT / "deploy" / "demo" / "experiments_and_reviews.py"
DEMO_CALLS = 300
# Rules the demo's traffic gives something to judge (it sends no experiment, and a few rate
# limits only: those rules may see nothing, which is quiet too).
FED = {
    "assay-error-rate",
    "assay-latency-p95",
    "assay-daily-cost",
    "assay-pass-rate-drop",
    "assay-judge-failures",
    "assay-collector-refusals",
    "assay-spool-age",
    "assay-collector-silent",
    "assay-store-down",
    "assay-dead-letters",
}


@pytest.fixture(scope="module")
def demo_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("demo-alerts")
    collector = start_collector(
        base / "data", base / "collector.log", "--config", str(COMPOSE_SETTINGS)
    )
    try:
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "assay.collector",
                "demo",
                "--endpoint",
                collector.grpc_endpoint,
                "--calls",
                str(DEMO_CALLS),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sent.returncode == 0, sent.stderr
        collector.wait_for_rows("SELECT 1 FROM llm_calls", DEMO_CALLS, timeout=60)
        collector.wait_for_rows("SELECT DISTINCT name FROM scores WHERE source = 'online'", 3)
        # The agent's runs, judged once complete (run_quiet_period after their last span).
        collector.wait_for_rows("SELECT DISTINCT name FROM scores WHERE level = 'trace'", 3)
        extras = subprocess.run(
            [sys.executable, str(DEMO_EXTRAS)],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "ASSAY_URL": collector.http_url,
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
            },
        )
        assert extras.returncode == 0, extras.stderr
        collector.wait_for_rows("SELECT 1 FROM scores WHERE source = 'human'", 1)
        collector.wait_for_rows("SELECT DISTINCT experiment_id FROM call_scores", 2)
        collector.wait_for_rows("SELECT DISTINCT timestamp FROM collector_stats", 2)
        time.sleep(1)  # the last evaluations' scores
        yield collector
    finally:
        collector.stop()


class ThroughTheApi:
    """Queries through a collector's /api/query, answered as the store answers them."""

    def __init__(self, collector: RunningCollector) -> None:
        self.collector = collector

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        rows = self.collector.query(sql)
        names = list(rows[0]) if rows else []
        return names, [tuple(row[n] for n in names) for row in rows]


def _run(collector: RunningCollector) -> Any:
    return ThroughTheApi(collector).query


# Panels of events the demo's healthy traffic does not have.
NOTHING_HAPPENED = {
    "collectors: Refused requests by reason": "no request was refused",
}


def test_the_demo_fills_every_dashboard(demo_collector: RunningCollector) -> None:
    api = ThroughTheApi(demo_collector)
    end = datetime.now(timezone.utc)
    start = end - timedelta(hours=1)
    requests = {}
    empty = []
    for panel in panel_queries():
        if panel.dashboard not in requests:
            requests[panel.dashboard] = resolve_variables(api, panel.dashboard, start, end)
        request = requests[panel.dashboard]
        request.min_interval_s = interval_for(panel.min_interval)
        _, rows = api.query(interpolate(panel.sql, request))
        if not rows and panel.id not in NOTHING_HAPPENED:
            empty.append(panel.id)
    assert empty == [], f"panels without data on the demo: {empty}"


def test_no_rule_fires_on_the_demos_healthy_traffic(demo_collector: RunningCollector) -> None:
    now = datetime.now(timezone.utc)
    judged = set()
    for alert in checked_in_rules():
        result = evaluate(_run(demo_collector), alert, now)
        assert result.firing == [], f"{alert['uid']} fires on the demo: {result.firing}"
        if result.instances:
            judged.add(alert["uid"])
    assert judged >= FED, f"the demo gave {FED - judged} nothing to judge"


def test_the_compose_settings_evaluate_and_redact(demo_collector: RunningCollector) -> None:
    evaluated = demo_collector.query(
        "SELECT DISTINCT name FROM scores WHERE source = 'online' ORDER BY name"
    )
    assert {row["name"] for row in evaluated} >= {"no_pii", "no_refusal", "length"}
    prompt = "Refund card 4111 1111 1111 1111 and mail jane.doe@example.com"
    messages = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    span = make_span(
        attrs={
            sc.OPERATION_NAME: sc.OP_CHAT,
            sc.REQUEST_MODEL: "gpt-4o-mini",
            sc.INPUT_MESSAGES: json.dumps(messages),
        }
    )
    sent = httpx.post(
        f"{demo_collector.http_url}/v1/traces",
        content=make_request("checkout", span).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert sent.status_code == 200, sent.text
    [row] = demo_collector.wait_for_rows(
        f"SELECT input_messages FROM llm_calls WHERE span_id = '{span.span_id.hex()}'", 1
    )
    stored = row["input_messages"]
    assert "jane.doe@example.com" not in stored and "4111 1111" not in stored
    assert "[REDACTED:email]" in stored and "[REDACTED:card]" in stored
