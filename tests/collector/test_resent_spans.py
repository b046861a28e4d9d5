"""A span a client sends twice (its exporter retried after losing the acknowledgement) is one
call on every surface: the calls table, the dashboards' rollups, the counters."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

pytestmark = pytest.mark.integration

PROTOBUF = {"Content-Type": "application/x-protobuf"}
# 2,000 input and 200 output tokens of gpt-4o-mini (0.15 and 0.60 USD per 1M): 0.00042 USD
CALL = {
    sc.OPERATION_NAME: sc.OP_CHAT,
    sc.PROVIDER_NAME: sc.PROVIDER_OPENAI,
    sc.REQUEST_MODEL: "gpt-4o-mini",
    sc.RESPONSE_MODEL: "gpt-4o-mini",
    sc.RESPONSE_ID: "chatcmpl-resent",
    sc.USAGE_INPUT_TOKENS: 2000,
    sc.USAGE_OUTPUT_TOKENS: 200,
}
COST = (2000 * 0.15 + 200 * 0.60) / 1_000_000


def _send(collector: RunningCollector, service: str, *spans: Any) -> None:
    body = make_request(service, *spans).SerializeToString()
    response = httpx.post(f"{collector.http_url}/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200, response.text


def _surfaces(collector: RunningCollector, service: str) -> dict[str, Any]:
    """Calls, input tokens and cost as each table holds them (the raw rows unmerged)."""
    totals = {}
    for table, tokens in (
        ("llm_calls", "sum(input_tokens)"),
        ("llm_calls_1m", "sum(input_tokens)"),
        ("llm_calls_1h", "sum(input_tokens)"),
        ("llm_users_1d", "sum(input_tokens)"),
    ):
        calls = "count()" if table == "llm_calls" else "sum(calls)"
        row = collector.query(
            f"SELECT {calls} AS calls, {tokens} AS tokens, round(sum(cost_usd), 9) AS cost "
            f"FROM assay.{table} WHERE service_name = '{service}'"
        )[0]
        totals[table] = (row["calls"], row["tokens"], row["cost"])
    sessions = collector.query(
        "SELECT sum(calls) AS calls, sum(tokens) AS tokens, round(sum(cost_usd), 9) AS cost "
        f"FROM assay.llm_sessions_1d WHERE has(services, '{service}')"
    )[0]
    totals["llm_sessions_1d"] = (sessions["calls"], sessions["tokens"], sessions["cost"])
    return totals


def _wait_for_calls(collector: RunningCollector, service: str, count: int) -> None:
    collector.wait_for_rows(
        f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'", count
    )
    time.sleep(0.5)  # a second copy, were it stored, lands with or right after the first


def _two_calls_and_a_tool(attributes: dict[str, Any]) -> tuple[Span, Span, Span]:
    """A call, another call and a tool call of one trace, each with span ids of its own."""
    call = make_span(attrs=attributes, trace_id=os.urandom(16), span_id=os.urandom(8))
    other = make_span(
        attrs={**attributes, sc.RESPONSE_ID: "chatcmpl-other"},
        trace_id=call.trace_id,
        span_id=os.urandom(8),
    )
    tool = make_span(
        "execute_tool search",
        {sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: "search"},
        trace_id=call.trace_id,
        span_id=os.urandom(8),
    )
    return call, other, tool


@pytest.mark.parametrize("apart", [False, True], ids=["one-segment", "two-segments"])
def test_a_call_sent_twice_is_counted_once_everywhere(
    collector: RunningCollector, apart: bool
) -> None:
    service = f"resent-{uuid.uuid4().hex[:8]}"
    attributes = {**CALL, sc.USER_ID: f"u-{service}", sc.SESSION_ID: f"s-{service}"}
    call, other, tool = _two_calls_and_a_tool(attributes)
    _send(collector, service, call, other, tool)
    if apart:  # the retry comes after the first copy was stored, in a segment of its own
        _wait_for_calls(collector, service, 2)
    _send(collector, service, call, tool)
    _wait_for_calls(collector, service, 2)
    tools = f"SELECT count() AS n FROM assay.tool_calls WHERE service_name = '{service}'"
    assert collector.query(tools) == [{"n": 1}]

    two_calls = (2, 4000, round(2 * COST, 9))
    assert _surfaces(collector, service) == {
        "llm_calls": two_calls,
        "llm_calls_1m": two_calls,
        "llm_calls_1h": two_calls,
        "llm_users_1d": two_calls,
        "llm_sessions_1d": (2, 4400, round(2 * COST, 9)),
    }


@pytest.mark.parametrize("apart", [False, True], ids=["one-segment", "two-segments"])
def test_the_health_counts_a_span_sent_twice_as_written_once(tmp_path: Path, apart: bool) -> None:
    """`spans_written` counts new spans: the copy of a call's or a tool call's span (and of any
    span within one segment) is counted as deduplicated in `otel_traces`, as its call is."""
    collector = start_collector(tmp_path / "data", tmp_path / "collector.log")
    try:
        service = "resent-health"
        call, other, tool = _two_calls_and_a_tool(CALL)
        _send(collector, service, call, other, tool)
        if apart:
            collector.wait_until_stored()
        _send(collector, service, call, tool)
        collector.wait_until_stored()
        pipeline = httpx.get(f"{collector.http_url}/api/health").json()["pipeline"]
        assert (pipeline["spans_received"], pipeline["spans_written"]) == (5, 3)
        assert pipeline["llm_calls_written"] == 2
        assert pipeline["deduplicated"] == {"otel_traces": 2, "llm_calls": 1, "tool_calls": 1}
    finally:
        collector.stop()


def test_a_plain_span_sent_again_in_a_later_request_counts_as_written_twice(
    tmp_path: Path,
) -> None:
    """What `spans_written` says of a plain span (no call, no tool call) a client sent again in
    a later request: it is not looked up (a look-up per plain span would cost 3.2-4.4 µs of CPU
    a span and 0.13-0.6 s per segment of 20,000 on the writer's path: README), so it counts as
    written each time, as README and the Collectors dashboard say; `otel_traces` keeps one row."""
    collector = start_collector(tmp_path / "data", tmp_path / "collector.log")
    try:
        service = "resent-plain"
        plain = make_span("GET /orders", {"http.route": "/orders"}, span_id=os.urandom(8))
        _send(collector, service, plain)
        collector.wait_until_stored()
        _send(collector, service, plain)
        collector.wait_until_stored()
        pipeline = httpx.get(f"{collector.http_url}/api/health").json()["pipeline"]
        assert (pipeline["spans_received"], pipeline["spans_written"]) == (2, 2)
        assert pipeline["deduplicated"] == {}
        stored = collector.query(
            f"SELECT count() AS n FROM assay.otel_traces FINAL WHERE ServiceName = '{service}'"
        )
        assert stored == [{"n": 1}]
    finally:
        collector.stop()
