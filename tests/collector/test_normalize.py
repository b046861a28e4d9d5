"""The normalizer turns OTLP spans into otel_traces rows and GenAI spans into llm_calls rows."""

from __future__ import annotations

import json

import pytest

from assay.collector.normalize.otlp import InvalidRequest, decode_json, decode_protobuf
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow, TraceRow, column_names
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span

CHAT = {
    sc.OPERATION_NAME: sc.OP_CHAT,
    sc.PROVIDER_NAME: sc.PROVIDER_OPENAI,
    sc.REQUEST_MODEL: "gpt-4o-mini",
    sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    sc.USAGE_INPUT_TOKENS: 1200,
    sc.USAGE_OUTPUT_TOKENS: 300,
    sc.USAGE_CACHE_READ_INPUT_TOKENS: 1000,
    sc.RESPONSE_FINISH_REASONS: ["stop"],
    sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
    sc.USER_ID: "u-1",
    sc.TAGS: ["beta", "eu"],
    sc.REQUEST_TEMPERATURE: 0.2,
}


def test_a_genai_span_becomes_a_trace_row_and_an_llm_call_row() -> None:
    parent = b"\x01" * 8
    span = make_span(attrs=CHAT, parent_span_id=parent, duration_ns=2_000_000_000)
    batch = normalize_traces(make_request("checkout", span))

    (trace,) = batch.traces
    assert trace.ServiceName == "checkout"
    assert trace.SpanKind == "Client"
    assert trace.SpanAttributes[sc.USAGE_INPUT_TOKENS] == "1200"
    assert json.loads(trace.SpanAttributes[sc.TAGS]) == ["beta", "eu"]

    (call,) = batch.llm_calls
    assert call.trace_id == span.trace_id.hex() and call.span_id == span.span_id.hex()
    assert call.parent_span_id == parent.hex()
    assert call.model == "gpt-4o-mini-2024-07-18"
    assert call.request_model == "gpt-4o-mini"
    assert (call.input_tokens, call.output_tokens, call.cached_input_tokens) == (1200, 300, 1000)
    assert call.duration_ms == pytest.approx(2000.0)
    assert call.finish_reasons == ["stop"]
    assert call.user_id == "u-1" and call.tags == ["beta", "eu"]
    assert json.loads(call.input_messages)[0]["parts"][0]["content"] == "hi"
    # Everything not in a column stays in the attributes map.
    assert call.attributes == {sc.REQUEST_TEMPERATURE: "0.2"}
    assert call.status == "ok"


def test_cost_comes_from_the_price_table_when_the_span_has_none() -> None:
    (call,) = normalize_traces(make_request("svc", make_span(attrs=CHAT))).llm_calls
    expected = pricing.cost_usd("gpt-4o-mini-2024-07-18", 1200, 300, 1000, None, "openai")
    assert expected is not None and call.cost_usd == pytest.approx(expected)
    assert call.cost_source == "priced"


def test_a_cost_on_the_span_is_kept_beside_the_price_tables() -> None:
    attrs = {**CHAT, sc.COST_USD: 0.123}
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs))).llm_calls
    expected = pricing.cost_usd("gpt-4o-mini-2024-07-18", 1200, 300, 1000, None, "openai")
    assert call.cost_usd == pytest.approx(expected) and call.cost_source == "priced"
    assert call.reported_cost_usd == 0.123


def test_the_spans_cost_stands_in_for_a_model_the_price_table_does_not_know() -> None:
    attrs = {**CHAT, sc.RESPONSE_MODEL: "my-finetune", sc.COST_USD: 0.5}
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs))).llm_calls
    assert (call.cost_usd, call.cost_source, call.reported_cost_usd) == (0.5, "reported", 0.5)


def test_an_unknown_model_has_no_cost_rather_than_zero() -> None:
    attrs = {**CHAT, sc.REQUEST_MODEL: "my-finetune", sc.RESPONSE_MODEL: "my-finetune"}
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs))).llm_calls
    assert call.cost_usd is None and call.cost_source == "unpriced_model"


def test_a_stream_without_usage_has_unknown_tokens_not_zero() -> None:
    attrs = {k: v for k, v in CHAT.items() if "usage" not in k}
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs))).llm_calls
    assert call.input_tokens is None and call.output_tokens is None and call.cost_usd is None


def test_an_error_span_is_an_error_row() -> None:
    attrs = {**CHAT, sc.ERROR_TYPE: "openai.RateLimitError"}
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs, error=True))).llm_calls
    assert call.status == "error"
    assert call.error_type == "openai.RateLimitError"
    assert call.error_message == "boom"


def test_spans_that_are_not_llm_calls_stay_in_otel_traces_only() -> None:
    spans = [
        make_span("GET /", {"http.method": "GET"}),
        make_span("execute_tool search", {sc.OPERATION_NAME: "execute_tool"}),
    ]
    batch = normalize_traces(make_request("svc", *spans))
    assert len(batch.traces) == 2 and batch.llm_calls == []


def test_row_types_name_the_table_columns() -> None:
    assert "Events.Timestamp" in column_names(TraceRow)
    assert column_names(LlmCallRow)[:4] == ["timestamp", "trace_id", "span_id", "parent_span_id"]


def test_otlp_json_ids_are_hex() -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": sc.REQUEST_MODEL, "value": {"stringValue": "gpt-4o"}},
                                    {"key": sc.USAGE_INPUT_TOKENS, "value": {"intValue": "7"}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    batch = normalize_traces(decode_json("traces", json.dumps(body).encode()))  # type: ignore[arg-type]
    (call,) = batch.llm_calls
    assert (call.trace_id, call.span_id, call.input_tokens) == (trace_id, span_id, 7)
    assert call.service_name == "json-svc"


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"resourceSpans": "no"}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
    ],
)
def test_bad_json_is_an_invalid_request(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        decode_json("traces", body)


def test_bad_protobuf_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        decode_protobuf("traces", b"\xff\xff\xff\xff garbage")
