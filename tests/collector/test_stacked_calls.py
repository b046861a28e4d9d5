"""Stacked instrumentations: two GenAI spans of one call make one `llm_calls` row."""

from __future__ import annotations

import json
import os
import time

from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.traces import normalize_traces
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span

CALL = {
    sc.OPERATION_NAME: "chat",
    sc.PROVIDER_NAME: "anthropic",
    sc.REQUEST_MODEL: "claude-sonnet-4-5",
    sc.RESPONSE_ID: "msg_1",
}
START = time.time_ns()
MS = 1_000_000


def calls(*spans: object) -> list:
    return normalize_traces(make_request("svc", *spans)).llm_calls  # type: ignore[arg-type]


def test_a_nested_span_of_the_same_call_is_folded_into_its_parent() -> None:
    outer = make_span(attrs={**CALL, sc.INPUT_MESSAGES: "[]"}, start_ns=START, duration_ns=10 * MS)
    inner = make_span(
        attrs={**CALL, sc.SERVER_ADDRESS: "api.anthropic.com", sc.USAGE_INPUT_TOKENS: 14},
        trace_id=outer.trace_id,
        parent_span_id=outer.span_id,
        start_ns=START + 1 * MS,
        duration_ns=5 * MS,
    )
    (row,) = merge_stacked_calls(calls(outer, inner))
    assert row.span_id == outer.span_id.hex()
    assert (row.server_address, row.input_tokens) == ("api.anthropic.com", 14)


def test_a_span_in_another_trace_with_the_same_response_id_is_the_same_call() -> None:
    outer = make_span(attrs=CALL, start_ns=START, duration_ns=10 * MS)
    inner = make_span(attrs=CALL, start_ns=START + 2 * MS, duration_ns=5 * MS)
    assert len(merge_stacked_calls(calls(outer, inner))) == 1


def test_calls_one_after_the_other_or_with_other_ids_stay_apart() -> None:
    first = make_span(attrs=CALL, start_ns=START, duration_ns=10 * MS)
    later = make_span(attrs=CALL, start_ns=START + 20 * MS, duration_ns=10 * MS)
    assert len(merge_stacked_calls(calls(first, later))) == 2
    other = make_span(
        attrs={**CALL, sc.RESPONSE_ID: "msg_2"}, start_ns=START + 2 * MS, duration_ns=5 * MS
    )
    assert len(merge_stacked_calls(calls(first, other))) == 2
    child_of_other_model = make_span(
        attrs={**CALL, sc.REQUEST_MODEL: "claude-haiku-4-5"},
        trace_id=first.trace_id,
        parent_span_id=first.span_id,
        span_id=os.urandom(8),
        start_ns=START + 1 * MS,
        duration_ns=5 * MS,
    )
    assert len(merge_stacked_calls(calls(first, child_of_other_model))) == 2


def test_langchains_llm_result_under_openinference_folds_with_the_clients_span() -> None:
    """OpenInference's LangChain LLM span is never made current: the openai client's span inside
    it is a trace of its own. The LLMResult OpenInference records carries the API's response id,
    so the two are still one call."""
    result = {"generations": [[]], "llm_output": {"id": "chatcmpl-7", "model_name": "gpt-4o-mini"}}
    outer = make_span(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini"}),
            "output.value": json.dumps(result),
            "llm.token_count.prompt": 10,
        },
        start_ns=START,
        duration_ns=10 * MS,
    )
    client = make_span(
        "chat gpt-4o-mini",
        {
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: "openai",
            sc.REQUEST_MODEL: "gpt-4o-mini",
            sc.RESPONSE_ID: "chatcmpl-7",
        },
        start_ns=START + 1 * MS,
        duration_ns=5 * MS,
    )
    (row,) = merge_stacked_calls(calls(outer, client))
    assert (row.span_id, row.response_id) == (outer.span_id.hex(), "chatcmpl-7")
