"""Real recorded provider traffic, replayed to the real client libraries with Assay on.

For every request recorded from a live provider API (../shared/recordings), a loopback server
answers with the recorded response (status, headers, body; a stream event by event), the
provider's own client makes the recorded request as an application would, and the span must
agree with what the provider answered, read from the recorded bytes (`answers.py`): model,
response id, tokens in the GenAI convention (cache and reasoning included), finish reasons,
reply text, reasoning and tool calls, the cost priced from prices.json, the error for an
error answer, and the `usage_source` / `cost_source` the collector stores for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.collector.normalize.llm_calls import llm_call_row
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.instrumentation.chat_requests import json_attribute
from tests.instrumentation.recordings.answers import Answer, answer, arguments
from tests.instrumentation.recordings.calls import ASYNC_CAPABLE, RAW_CAPABLE, make_call
from tests.instrumentation.recordings.cassettes import RECORDINGS, RecordedCall, recorded_calls
from tests.instrumentation.recordings.replay_server import ReplayServer

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="no ../shared/recordings here")

# Faults another change is fixing (issue #17): the replay shows them until it lands.
# recording name -> the fault it shows that is not fixed yet (none today: the last, LiteLLM's
# streamed reasoning_content, was fixed in 8a1a170). A fixed fault fails its strict xfail.
KNOWN_FAULTS: dict[str, str] = {}
# The request body's parts that say what was asked: the replayed call must send them as recorded.
ASKED = ("model", "messages", "contents", "system", "systemInstruction", "tools", "toolConfig")


def camel(value: Any) -> Any:
    """`value` with every key in camelCase: google-genai writes some of the recorded camelCase
    names in snake_case (`mime_type`), which the API reads alike."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def cases(mode: str = "") -> list[Any]:
    """Each recorded call, as a test case (call, mode). Modes "raw" and "streaming": the
    `create` calls, plain and streamed, again through `with_raw_response` and
    `with_streaming_response`; "async": the sync calls again with the async client."""
    calls = recorded_calls()
    if mode in ("raw", "streaming"):
        calls = [
            call
            for call in calls
            if call.provider in RAW_CAPABLE
            and not any(word in call.cassette for word in ("async", "parse", "stream_message"))
        ]
    elif mode == "async":
        calls = [
            call
            for call in calls
            if call.provider in ASYNC_CAPABLE
            and not any(word in call.cassette for word in ("async", "parse", "beta"))
        ]
    return [
        pytest.param(
            call,
            mode,
            id=f"{call.name} {mode}".strip(),
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAULTS[call.name])]
            if call.name in KNOWN_FAULTS
            else [],
        )
        for call in calls
    ]


def replay(call: RecordedCall, mode: str = "") -> tuple[Any, BaseException | None, list[Any]]:
    """Make the recorded call against its recorded answer: (result, raised, requests sent)."""
    with ReplayServer(call) as server:
        try:
            return make_call(call, server.base_url, mode), None, server.received
        except Exception as error:  # an error answer raises in the client, as it should
            return None, error, server.received


def parts(span: ReadableSpan, kind: str) -> list[dict[str, Any]]:
    if sc.OUTPUT_MESSAGES not in (span.attributes or {}):
        return []
    messages = json_attribute(span, sc.OUTPUT_MESSAGES)
    return [part for message in messages for part in message["parts"] if kind in ("", part["type"])]


def expected_cost(expected: Answer, model: str | None) -> float | None:
    return pricing.cost_usd(
        model,
        expected.input_tokens,
        expected.output_tokens,
        cached_input_tokens=expected.cache_read,
        cache_creation_input_tokens=expected.cache_write,
        provider=expected.provider,
        reasoning_tokens=expected.reasoning,
    )


def stored_row(span: ReadableSpan) -> Any:
    """The llm_calls row the collector makes of the span."""
    return llm_call_row(
        dict(span.attributes or {}),
        dialect="genai",
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        trace_id="0" * 32,
        span_id="0" * 16,
        parent_span_id="",
        service_name="replay",
        is_error=span.status.status_code == StatusCode.ERROR,
        status_message=span.status.description or "",
    )


# Each provider's name of a sampling parameter (top level, or in inferenceConfig,
# generationConfig or options) → the span attribute.
PARAMETERS = {
    "temperature": sc.REQUEST_TEMPERATURE,
    "max_tokens": sc.REQUEST_MAX_TOKENS,
    "maxTokens": sc.REQUEST_MAX_TOKENS,
    "maxOutputTokens": sc.REQUEST_MAX_TOKENS,
    "num_predict": sc.REQUEST_MAX_TOKENS,
    "top_p": sc.REQUEST_TOP_P,
    "topP": sc.REQUEST_TOP_P,
    "top_k": sc.REQUEST_TOP_K,
    "topK": sc.REQUEST_TOP_K,
    "seed": sc.REQUEST_SEED,
    "random_seed": sc.REQUEST_SEED,
}


def check_request_attributes(span: ReadableSpan, call: RecordedCall) -> None:
    """The span holds the recorded request: its sampling parameters, its messages one for one,
    its system instructions and its tools when it had them."""
    body = call.request_body if isinstance(call.request_body, dict) else {}
    attributes = span.attributes or {}
    if call.provider != "litellm":  # LiteLLM adds parameters of its own to what it sends
        sent = {}
        for source in (
            body,
            *(body.get(k) or {} for k in ("inferenceConfig", "generationConfig", "options")),
        ):
            sent |= {PARAMETERS[k]: v for k, v in source.items() if k in PARAMETERS}
        assert {name: attributes.get(name) for name in sent} == sent
    messages = body.get("messages") or body.get("contents")
    if messages:
        assert len(json_attribute(span, sc.INPUT_MESSAGES)) == len(messages)
    assert (sc.SYSTEM_INSTRUCTIONS in attributes) == bool(
        body.get("system") or body.get("systemInstruction")
    )
    tools = body.get("tools") or (body.get("toolConfig") or {}).get("tools")
    assert (sc.TOOL_DEFINITIONS in attributes) == bool(tools)


@pytest.fixture(autouse=True)
def _builtin_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    pricing.reload()


@pytest.mark.parametrize(
    ("call", "mode"),  # the known faults are in the content: none left without it
    [pytest.param(*c.values, id=c.id) for c in cases() if c.values[0].streamed],
)
def test_without_content_capture_a_stream_still_has_its_numbers(
    call: RecordedCall,
    mode: str,
    instrument_with: Callable[..., Any],
    span_exporter: InMemorySpanExporter,
) -> None:
    instrument_with(capture_content=False)
    expected = answer(call)

    replay(call)

    (span,) = [s for s in span_exporter.get_finished_spans() if sc.OPERATION_NAME in s.attributes]
    attributes = span.attributes
    assert not {sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS} & set(attributes)
    assert tuple(attributes.get(sc.RESPONSE_FINISH_REASONS, ())) == expected.finish_reasons
    assert attributes.get(sc.USAGE_INPUT_TOKENS) == expected.input_tokens
    assert attributes.get(sc.USAGE_OUTPUT_TOKENS) == expected.output_tokens
    cost = expected_cost(
        expected, attributes.get(sc.RESPONSE_MODEL) or attributes.get(sc.REQUEST_MODEL)
    )
    assert attributes.get(sc.COST_USD) == (None if cost is None else pytest.approx(cost))


@pytest.mark.parametrize(
    ("call", "mode"), cases() + cases("raw") + cases("streaming") + cases("async")
)
def test_the_span_says_what_the_provider_answered(
    call: RecordedCall,
    mode: str,
    instrument_with: Callable[..., Any],
    span_exporter: InMemorySpanExporter,
) -> None:
    instrument_with(capture_content=True)
    expected = answer(call)

    result, raised, requests = replay(call, mode)

    # The client sent the recorded request, once.
    assert len(requests) == 1, [r.path for r in requests]
    sent, recorded = requests[0].body, call.request_body
    if isinstance(recorded, dict) and isinstance(sent, dict):
        asked = {k: recorded[k] for k in ASKED if k in recorded}
        assert camel({k: sent.get(k) for k in asked}) == camel(asked)
    assert (raised is not None) == expected.error, raised

    llm_spans = [s for s in span_exporter.get_finished_spans() if sc.OPERATION_NAME in s.attributes]
    assert len(llm_spans) == 1, [s.name for s in span_exporter.get_finished_spans()]
    check_request_attributes(llm_spans[0], call)
    span = llm_spans[0]
    attributes = span.attributes
    assert attributes[sc.PROVIDER_NAME] == expected.provider
    row = stored_row(span)

    if expected.error:
        assert raised is not None
        assert attributes[sc.ERROR_TYPE] == type(raised).__qualname__
        assert span.status.status_code == StatusCode.ERROR
        assert sc.USAGE_INPUT_TOKENS not in attributes and sc.COST_USD not in attributes
        assert (row.cost_source, row.usage_source) == ("failed_call", "none")
        return

    if call.provider == "litellm":
        # LiteLLM answers with its own id, the model as asked and its own count of the
        # thinking tokens (Anthropic reports none apart): the span names what the
        # application got.
        if isinstance(result, list):  # a stream: the response its chunks make up
            import litellm

            result = litellm.stream_chunk_builder(result)
        got = result
        expected.response_id, expected.model = got.id, got.model
        details = getattr(getattr(got, "usage", None), "completion_tokens_details", None)
        expected.reasoning = getattr(details, "reasoning_tokens", None) or 0
    assert attributes.get(sc.RESPONSE_MODEL) == expected.model
    assert attributes.get(sc.RESPONSE_ID) == expected.response_id
    assert tuple(attributes.get(sc.RESPONSE_FINISH_REASONS, ())) == expected.finish_reasons

    assert attributes.get(sc.USAGE_INPUT_TOKENS) == expected.input_tokens
    assert attributes.get(sc.USAGE_OUTPUT_TOKENS) == expected.output_tokens
    assert attributes.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0) == expected.cache_read
    assert attributes.get(sc.USAGE_CACHE_CREATION_INPUT_TOKENS, 0) == expected.cache_write
    assert attributes.get(sc.USAGE_REASONING_OUTPUT_TOKENS, 0) == expected.reasoning

    kinds = [p["type"] for p in parts(span, "")]
    # one text (or reasoning) part per run of text, however the provider cut it into blocks
    assert not [a for a, b in pairwise(kinds) if a == b and a in ("text", "reasoning")]
    assert all(p["content"] for p in parts(span, "text") + parts(span, "reasoning"))
    assert "".join(p["content"] or "" for p in parts(span, "text")) == expected.text
    assert "".join(p["content"] or "" for p in parts(span, "reasoning")) == expected.reasoning_text
    assert [(p["name"], arguments(p["arguments"])) for p in parts(span, "tool_call")] == (
        expected.tool_calls
    )

    assert [p["code"] for p in parts(span, "executable_code")] == expected.code
    assert [p["output"] for p in parts(span, "code_execution_result")] == expected.code_output

    cost = expected_cost(expected, row.model)
    if cost is None:
        assert sc.COST_USD not in attributes
    else:
        assert attributes[sc.COST_USD] == pytest.approx(cost)
    assert row.usage_source == ("reported" if expected.usage_known else "none")
    if expected.provider == sc.PROVIDER_OLLAMA:  # local: billed by no one
        assert row.cost_source == "unpriced_model"
    else:
        assert (row.cost_source, row.cost_usd) == ("priced", pytest.approx(cost))
