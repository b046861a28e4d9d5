"""Scores from another tool, as OpenTelemetry: Splunk's opentelemetry-util-genai (in a venv of
its own, tests/peers/venvs.py) records an LLM invocation and reports its evaluation results,
which it sends as `gen_ai.evaluation.result` log records. The collector stores them as scores of
that call, with the sending tool named, and a value off the [0, 1] scale kept as an error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningCollector
from tests.peers.venvs import peer_python

pytestmark = [pytest.mark.peers, pytest.mark.integration, pytest.mark.timeout(900)]
SCRIPT = Path(__file__).parents[1] / "peers" / "splunk_evaluations.py"


def test_a_peers_evaluation_events_become_scores_of_its_call(collector: RunningCollector) -> None:
    python = peer_python("splunk-genai")
    done = subprocess.run(
        [str(python), str(SCRIPT), collector.http_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    rows = collector.wait_for_rows(
        "SELECT name, value, label, passed, source, author, error, trace_id FROM scores"
        f" WHERE span_id = '{ids['span_id']}' ORDER BY name",
        3,
    )
    by_name = {row["name"]: row for row in rows}
    assert {r["source"] for r in rows} == {"otel"}
    assert {r["trace_id"] for r in rows} == {ids["trace_id"]}
    assert {r["author"] for r in rows} == {"opentelemetry.util.genai.handler"}  # the sender
    relevance = by_name["relevance"]
    assert (relevance["value"], relevance["label"], relevance["passed"]) == (0.8, "relevant", True)
    assert (by_name["toxicity"]["value"], by_name["toxicity"]["error"]) == (0.1, "")
    assert by_name["bias"]["error"].startswith("score value '4.0' is not in [0, 1]")

    collector.wait_for_rows(f"SELECT span_id FROM llm_calls WHERE span_id = '{ids['span_id']}'", 1)
    call = httpx.get(f"{collector.http_url}/api/calls/{ids['span_id']}", timeout=30).json()
    assert sorted(s["name"] for s in call["scores"]) == ["bias", "relevance", "toxicity"]
