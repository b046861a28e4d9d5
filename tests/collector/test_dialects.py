"""Each GenAI dialect's mapping, on hand-built OTLP: spans of OpenLLMetry, OpenLIT, OpenInference
and the current conventions (with their events) become the same `llm_calls` row."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from assay.collector.normalize.dialects import openinference, openlit, openllmetry
from assay.collector.normalize.llm_messages import attach_log_messages
from assay.collector.normalize.logs import normalize_logs
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import (
    make_log_record,
    make_log_request,
    make_request,
    make_span,
)
from tests.conftest import RunningCollector

SYSTEM, QUESTION, ANSWER = "Answer briefly.", "What is the capital of France?", "Paris."
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
    {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
]
OUTPUT = [
    {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
]
MODEL, SNAPSHOT = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
REQUEST = {
    "model": MODEL,
    "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
}
RESPONSE = {
    "id": "chatcmpl-1",
    "model": SNAPSHOT,
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
}


def one_call(attrs: dict[str, Any], **span: Any) -> LlmCallRow:
    (call,) = normalize_traces(make_request("svc", make_span(attrs=attrs, **span))).llm_calls
    return call


def assert_the_same_call(call: LlmCallRow, dialect: str) -> None:
    """What every dialect's spelling of the one chat call must come to."""
    assert call.dialect == dialect
    assert (call.operation, call.provider) == ("chat", "openai")
    assert (call.request_model, call.response_model, call.model) == (MODEL, SNAPSHOT, SNAPSHOT)
    assert (call.input_tokens, call.output_tokens) == (20, 5)
    assert json.loads(call.input_messages) == INPUT
    assert json.loads(call.output_messages) == OUTPUT
    assert call.finish_reasons == ["stop"]
    assert call.cost_usd == pytest.approx(pricing.cost_usd(SNAPSHOT, 20, 5, None, None, "openai"))
    assert call.cost_source == "priced"


def test_openllmetry_indexed_prompt_and_completion_attributes() -> None:
    call = one_call(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            sc.REQUEST_MODEL: MODEL,
            sc.RESPONSE_MODEL: SNAPSHOT,
            "gen_ai.usage.prompt_tokens": 20,
            "gen_ai.usage.completion_tokens": 5,
            "llm.usage.total_tokens": 25,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": SYSTEM,
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": QUESTION,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": ANSWER,
            "gen_ai.completion.0.finish_reason": "stop",
            "gen_ai.openai.api_base": "https://api.openai.com/v1/",
            "traceloop.association.properties.user_id": "u-7",
        },
        name="openai.chat",
    )
    assert_the_same_call(call, openllmetry.NAME)
    assert call.server_address == "api.openai.com" and call.user_id == "u-7"
    # What became a column leaves the attributes map; the rest stays.
    assert call.attributes == {"llm.usage.total_tokens": "25"}


def test_openllmetry_tool_calls_become_tool_call_parts() -> None:
    call = one_call(
        {
            "llm.request.type": "chat",
            sc.REQUEST_MODEL: MODEL,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Weather in Paris?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_1",
            "gen_ai.completion.0.tool_calls.0.name": "weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
        }
    )
    (message,) = json.loads(call.output_messages)
    assert message["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}
    ]
    assert call.finish_reasons == ["tool_calls"]


def test_openinference_indexed_messages_and_token_counts() -> None:
    call = one_call(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": SNAPSHOT,
            "llm.invocation_parameters": json.dumps({"model": MODEL, "temperature": 0}),
            "llm.token_count.prompt": 20,
            "llm.token_count.completion": 5,
            "llm.token_count.total": 25,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": SYSTEM,
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": QUESTION,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
            "llm.finish_reason": "stop",
            "input.value": json.dumps(REQUEST),
            "output.value": json.dumps(RESPONSE),
            "session.id": "s-1",
        },
        name="ChatCompletion",
    )
    assert_the_same_call(call, openinference.NAME)
    assert call.session_id == "s-1" and call.response_id == "chatcmpl-1"
    assert call.attributes == {"llm.token_count.total": "25"}


def test_openinference_without_indexed_messages_reads_the_raw_request_and_response() -> None:
    call = one_call(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": SNAPSHOT,
            "llm.token_count.prompt": 20,
            "llm.token_count.completion": 5,
            "input.value": json.dumps(REQUEST),
            "output.value": json.dumps(RESPONSE),
        }
    )
    assert_the_same_call(call, openinference.NAME)


def test_openinference_spans_that_are_not_calls_stay_in_otel_traces_only() -> None:
    for kind in ("CHAIN", "TOOL", "RETRIEVER", "AGENT"):
        span = make_span(attrs={"openinference.span.kind": kind, "input.value": "x"})
        batch = normalize_traces(make_request("svc", span))
        assert len(batch.traces) == 1 and batch.llm_calls == []


def test_openlit_cost_is_kept_beside_the_price_tables_and_ttft_is_read() -> None:
    call = one_call(
        {
            "telemetry.sdk.name": "openlit",
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: "openai",
            sc.REQUEST_MODEL: MODEL,
            sc.RESPONSE_MODEL: SNAPSHOT,
            sc.USAGE_INPUT_TOKENS: 20,
            sc.USAGE_OUTPUT_TOKENS: 5,
            sc.RESPONSE_FINISH_REASONS: ["stop"],
            sc.INPUT_MESSAGES: json.dumps(INPUT),
            sc.OUTPUT_MESSAGES: json.dumps(OUTPUT),
            "gen_ai.usage.cost": 0.0,  # OpenLIT offline: its price list could not be fetched
            "gen_ai.server.time_to_first_token": 0.25,
            "gen_ai.request.is_stream": True,
        }
    )
    assert_the_same_call(call, openlit.NAME)
    assert call.reported_cost_usd == 0.0  # its figure, visible; ours is the price table's
    assert call.time_to_first_token_ms == pytest.approx(250.0) and call.streamed


def test_a_reported_zero_for_a_model_the_price_table_does_not_know_is_unpriced() -> None:
    call = one_call(
        {
            "telemetry.sdk.name": "openlit",
            sc.OPERATION_NAME: "chat",
            sc.REQUEST_MODEL: "my-finetune",
            sc.USAGE_INPUT_TOKENS: 20,
            sc.USAGE_OUTPUT_TOKENS: 5,
            "gen_ai.usage.cost": 0,
        }
    )
    assert (call.cost_usd, call.cost_source, call.reported_cost_usd) == (
        None,
        "unpriced_model",
        0.0,
    )


def test_openlit_legacy_content_events_become_messages() -> None:
    call = one_call(
        {"telemetry.sdk.name": "openlit", sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: MODEL},
        events=(
            ("gen_ai.content.prompt", {"gen_ai.prompt": QUESTION}),
            ("gen_ai.content.completion", {"gen_ai.completion": ANSWER}),
        ),
    )
    assert json.loads(call.input_messages)[0]["parts"][0]["content"] == QUESTION
    assert json.loads(call.output_messages)[0]["parts"][0]["content"] == ANSWER


def test_openlit_spans_of_vector_stores_are_not_calls() -> None:
    span = make_span(attrs={"telemetry.sdk.name": "openlit", sc.OPERATION_NAME: "vectordb"})
    assert normalize_traces(make_request("svc", span)).llm_calls == []


CURRENT = {
    sc.OPERATION_NAME: "chat",
    sc.PROVIDER_NAME: "openai",
    sc.REQUEST_MODEL: MODEL,
    sc.RESPONSE_MODEL: SNAPSHOT,
    sc.USAGE_INPUT_TOKENS: 20,
    sc.USAGE_OUTPUT_TOKENS: 5,
    sc.RESPONSE_FINISH_REASONS: ["stop"],
}


def test_current_conventions_with_messages_in_an_inference_details_span_event() -> None:
    call = one_call(
        CURRENT,
        events=(
            (
                sc.EVENT_INFERENCE_DETAILS,
                {sc.INPUT_MESSAGES: json.dumps(INPUT), sc.OUTPUT_MESSAGES: json.dumps(OUTPUT)},
            ),
        ),
    )
    assert_the_same_call(call, "genai")


def test_current_conventions_with_one_span_event_per_message() -> None:
    call = one_call(
        CURRENT,
        events=(
            (sc.EVENT_SYSTEM_MESSAGE, {"content": SYSTEM}),
            (sc.EVENT_USER_MESSAGE, {"content": QUESTION}),
            (
                sc.EVENT_CHOICE,
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": json.dumps({"role": "assistant", "content": ANSWER}),
                },
            ),
        ),
    )
    assert_the_same_call(call, "genai")


def test_a_span_of_no_dialect_stays_in_otel_traces_only() -> None:
    span = make_span(
        "GET /health", {"http.route": "/health", "traceloop.association.properties.user_id": "u"}
    )
    batch = normalize_traces(make_request("svc", span))
    assert len(batch.traces) == 1 and batch.llm_calls == []


# --- messages sent as log records ------------------------------------------------------------


def test_log_records_fill_the_messages_of_their_span_in_the_same_batch() -> None:
    span = make_span(attrs=CURRENT)
    batch = normalize_traces(make_request("svc", span))
    records = [
        make_log_record(sc.EVENT_SYSTEM_MESSAGE, span=span, body={"content": SYSTEM}),
        make_log_record(sc.EVENT_USER_MESSAGE, span=span, body={"content": QUESTION}),
        make_log_record(
            sc.EVENT_CHOICE,
            span=span,
            body={
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": ANSWER},
            },
        ),
        make_log_record("app.audit", span=span, body="not a GenAI event"),
    ]
    logs = normalize_logs(make_log_request("svc", *records))
    leftovers = attach_log_messages(batch.llm_calls, logs)
    assert leftovers == []
    assert_the_same_call(batch.llm_calls[0], "genai")


def test_log_records_without_their_span_in_the_batch_are_kept_for_the_join_at_read() -> None:
    span = make_span(attrs=CURRENT)
    record = make_log_record(
        sc.EVENT_INFERENCE_DETAILS,
        span=span,
        attrs={sc.INPUT_MESSAGES: json.dumps(INPUT), sc.OUTPUT_MESSAGES: json.dumps(OUTPUT)},
    )
    logs = normalize_logs(make_log_request("svc", record))
    (row,) = attach_log_messages([], logs)
    assert (row.span_id, row.trace_id) == (span.span_id.hex(), span.trace_id.hex())
    assert json.loads(row.input_messages) == INPUT and json.loads(row.output_messages) == OUTPUT


def test_a_spans_own_messages_win_over_its_log_records() -> None:
    span = make_span(attrs={**CURRENT, sc.INPUT_MESSAGES: json.dumps(INPUT)})
    batch = normalize_traces(make_request("svc", span))
    record = make_log_record(sc.EVENT_USER_MESSAGE, span=span, body={"content": "other"})
    attach_log_messages(batch.llm_calls, normalize_logs(make_log_request("svc", record)))
    assert json.loads(batch.llm_calls[0].input_messages) == INPUT


def test_log_records_arriving_after_their_span_is_stored_are_joined_at_read(
    collector: RunningCollector,
) -> None:
    service = f"late-logs-{uuid.uuid4().hex[:8]}"
    span = make_span(attrs=CURRENT)
    post(collector, "traces", make_request(service, span).SerializeToString())
    query = (
        "SELECT input_messages, output_messages FROM assay.llm_calls_with_messages"
        f" WHERE service_name = '{service}'"
    )
    (stored,) = collector.wait_for_rows(query, 1)
    assert stored["input_messages"] == ""  # the span carried no messages
    record = make_log_record(
        sc.EVENT_INFERENCE_DETAILS,
        span=span,
        attrs={sc.INPUT_MESSAGES: json.dumps(INPUT), sc.OUTPUT_MESSAGES: json.dumps(OUTPUT)},
    )
    post(collector, "logs", make_log_request(service, record).SerializeToString())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        (row,) = collector.query(query)
        if row["input_messages"]:
            break
        time.sleep(0.1)
    assert json.loads(row["input_messages"]) == INPUT
    assert json.loads(row["output_messages"]) == OUTPUT


def post(collector: RunningCollector, signal: str, body: bytes) -> None:
    response = httpx.post(
        f"{collector.http_url}/v1/{signal}",
        content=body,
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text


def test_openllmetrys_names_are_told_apart_however_many_names_came_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`openllmetry.matches` remembers which names are OpenLLMetry's own: the answers stay those
    of the names themselves when the memory is full and starts again, and for a name too long
    to be remembered."""
    monkeypatch.setattr(openllmetry, "_REMEMBERED_NAMES", 8)
    plain = {f"app.field.{n}": "x" for n in range(20)}
    assert not openllmetry.matches(plain)
    assert not openllmetry.matches({**plain, sc.PROMPT_NAME: "support", "gen_ai.prompt.x.y": 1})
    long_indexed = "gen_ai.prompt.0." + "a" * 300
    for attrs in (
        {**plain, long_indexed: "hello"},
        {**plain, "gen_ai.completion.12.content": "hi"},
        {**plain, "gen_ai.is_streaming": True},
    ):
        assert openllmetry.matches(attrs), attrs
        assert openllmetry.matches(attrs), attrs  # asked again: remembered, or not
    assert len(openllmetry._own_names) <= 8
    assert long_indexed not in openllmetry._own_names
    assert not openllmetry.matches(plain)
