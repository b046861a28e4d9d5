"""End to end: the real openai client, instrumented by the one-line import in its own process,
exports over real gRPC or HTTP to a real collector, which stores the calls in embedded chDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.apps.values import QUESTION
from tests.conftest import RunningCollector

# (a module-wide mark lets `--fast` skip importing the app, which instruments the process it is
# imported in, with an OTLP exporter to localhost:4317)
pytestmark = pytest.mark.integration


def run_app(
    collector: RunningCollector,
    fake: FakeOpenAI,
    protocol: str,
    app: str = "tests.apps.openai_app",
    **env: str,
) -> tuple[str, dict[str, Any]]:
    service = f"e2e-{uuid.uuid4().hex[:8]}"
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_url
    result = subprocess.run(
        [sys.executable, "-m", app],
        env={
            **os.environ,
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "ASSAY_TEST_BASE_URL": fake.base_url,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return service, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeOpenAI() as server:
        yield server


def _calls(collector: RunningCollector, service: str) -> dict[str, dict[str, Any]]:
    rows = collector.wait_for_rows(
        f"SELECT * FROM assay.llm_calls WHERE service_name = '{service}' ORDER BY timestamp", 6
    )
    keyed = {}
    for row in rows:
        key = row["request_model"] if row["operation"] == sc.OP_CHAT else row["operation"]
        if row["streamed"]:  # in the app's order: with usage asked for, then without
            key = "unasked stream" if "stream" in keyed else "stream"
        keyed[key] = row
    return keyed


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_instrumented_service_lands_in_llm_calls(
    collector: RunningCollector, fake: FakeOpenAI, protocol: str
) -> None:
    service, app = run_app(collector, fake, protocol)
    calls = _calls(collector, service)
    assert set(calls) == {
        "gpt-4o-mini",
        "stream",
        "unasked stream",
        "embeddings",
        "fail-429",
        "fail-500",
    }

    chat = calls["gpt-4o-mini"]
    usage = app["chat"]["usage"]
    assert chat["model"] == app["chat"]["model"] and chat["response_id"] == app["chat"]["id"]
    assert chat["provider"] == sc.PROVIDER_OPENAI
    assert chat["input_tokens"] == usage["prompt_tokens"]
    assert chat["output_tokens"] == usage["completion_tokens"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    assert chat["cached_input_tokens"] == cached
    expected_cost = pricing.cost_usd(
        chat["model"], usage["prompt_tokens"], usage["completion_tokens"], cached
    )
    assert expected_cost is not None and chat["cost_usd"] == pytest.approx(expected_cost)
    assert json.loads(chat["input_messages"])[-1] == {
        "role": "user",
        "parts": [{"type": "text", "content": QUESTION}],
    }
    (answer,) = json.loads(chat["output_messages"])
    assert answer["parts"][0]["content"] == app["chat"]["text"]
    assert chat["finish_reasons"] == ["stop"]
    assert chat["status"] == "ok"
    # Stamped by context(...) and nested under the app's own span.
    assert (chat["user_id"], chat["session_id"]) == ("u-e2e", "s-e2e")
    assert (chat["prompt_name"], chat["prompt_version"], chat["tags"]) == (
        "capitals",
        "v2",
        ["e2e", "geo"],
    )
    assert chat["trace_id"] == app["trace_id"] and chat["parent_span_id"] == app["parent_span_id"]
    assert all(row["trace_id"] == app["trace_id"] for row in calls.values())

    streamed = calls["stream"]
    assert streamed["input_tokens"] == app["stream_usage"]["prompt_tokens"]
    assert streamed["time_to_first_token_ms"] is not None
    assert 0 < streamed["time_to_first_token_ms"] <= streamed["duration_ms"]
    assert streamed["cost_usd"] is not None

    # A stream the app asked no usage for: Assay asked, the app saw none of it, the row has it.
    unasked = calls["unasked stream"]
    assert app["unasked_stream"]["chunks"] > 3
    assert app["unasked_stream"]["with_usage"] == app["unasked_stream"]["without_choices"] == 0
    assert unasked["usage_source"] == sc.USAGE_SOURCE_REPORTED
    assert unasked["input_tokens"] == streamed["input_tokens"]  # the same request
    assert unasked["output_tokens"] == streamed["output_tokens"]
    assert unasked["cost_source"] == "priced" and unasked["cost_usd"] == streamed["cost_usd"]
    assert unasked["output_messages"]

    embedding = calls["embeddings"]
    assert embedding["input_tokens"] == app["embedding_usage"]["prompt_tokens"]
    assert embedding["cost_usd"] is not None

    for model, exception in (("fail-429", "RateLimitError"), ("fail-500", "InternalServerError")):
        assert app[model] == exception
        assert calls[model]["status"] == "error"
        assert exception in calls[model]["error_type"]

    # Every span is in otel_traces too, the app's own span included.
    spans = collector.query(
        f"SELECT SpanName FROM assay.otel_traces WHERE ServiceName = '{service}'"
    )
    assert "handle question" in {s["SpanName"] for s in spans} and len(spans) == 7


def test_content_capture_off_keeps_messages_out(
    collector: RunningCollector, fake: FakeOpenAI
) -> None:
    service, app = run_app(collector, fake, "grpc", ASSAY_CAPTURE_CONTENT="false")
    calls = _calls(collector, service)
    for row in calls.values():
        assert row["input_messages"] == "" and row["output_messages"] == ""
        assert QUESTION not in json.dumps(row)
    assert calls["gpt-4o-mini"]["input_tokens"] == app["chat"]["usage"]["prompt_tokens"]
    spans = collector.query(
        f"SELECT SpanAttributes FROM assay.otel_traces WHERE ServiceName = '{service}'"
    )
    assert QUESTION not in json.dumps(spans)


def test_an_answer_the_client_refused_after_it_finished_is_priced(
    collector: RunningCollector, fake: FakeOpenAI
) -> None:
    """parse() raising LengthFinishReasonError: the answer finished (at max_tokens) and was
    billed; the call is an error, with its usage, finish reason and cost. A call that failed
    before its answer finished stays unpriced (test_end_to_end_anthropic's mid-stream error)."""
    service, app = run_app(collector, fake, "grpc", "tests.apps.parse_app")
    assert app["error"] == "LengthFinishReasonError" and app["usage"]
    (row,) = collector.wait_for_rows(
        f"SELECT * FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )
    assert row["status"] == "error" and row["error_type"] == "LengthFinishReasonError"
    assert row["finish_reasons"] == ["length"]
    usage = app["usage"]
    assert (row["input_tokens"], row["output_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    expected = pricing.cost_usd("gpt-4o-mini", usage["prompt_tokens"], usage["completion_tokens"])
    assert expected and row["cost_source"] == "priced"
    assert row["cost_usd"] == pytest.approx(expected)
