"""An LLM call's content is stored once: `otel_traces` keeps a preview of each long attribute its
`llm_calls` row holds exactly and says where the full text is; every character stays reachable,
in every dialect, and the UI's trace view shows the attribute whole."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.trace_content import (
    ELLIPSIS,
    PREVIEW_CHARS,
    locations,
    preview,
    restore_content,
)
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.receivers.content import redact_request
from assay.collector.records import traces
from assay.collector.redaction import Redactor
from assay.collector.schema import LlmCallRow, TraceRow, insert_arguments
from assay.collector.settings import load_settings
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.collector.golden.capture import ROWS
from tests.collector.golden.rows import corpus, digest
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

LONG = "Tell me everything about the Loire valley, castle by castle. " * 20  # 1,220 chars
ANSWER = "Chambord comes first: " + "its double-helix staircase, " * 30
TOOLS = json.dumps([{"type": "function", "name": "castles", "parameters": {"x": "y" * 400}}])


def _batch(request: ExportTraceServiceRequest, *, full: bool = False) -> TraceBatch:
    """The request's rows as the writer makes a segment's."""
    batch = normalize_traces(request)
    batch.llm_calls = merge_stacked_calls(batch.llm_calls)
    batch.link(full_content=full)
    return batch


def _stored(attrs: dict[str, Any], **span: Any) -> tuple[TraceRow, TraceRow, LlmCallRow]:
    """The span's otel_traces row with full content and with previews, and its llm_calls row;
    the llm_calls row is the same either way, and the previews restore to the full row."""
    request = make_request("svc", make_span(attrs=attrs, **span))
    full, short = _batch(request, full=True), _batch(request)
    ((full_row,), (row,), (call,)) = full.traces, short.traces, short.llm_calls
    assert asdict(full.llm_calls[0]) == asdict(call)
    assert restore_content(row.SpanAttributes, asdict(call)) == full_row.SpanAttributes
    for key, where in locations(row.SpanAttributes).items():
        assert row.SpanAttributes[key] == preview(full_row.SpanAttributes[key]), key
        assert len(row.SpanAttributes[key]) == PREVIEW_CHARS + len(ELLIPSIS)
        assert where.startswith("llm_calls.")
    return full_row, row, call


def _shortened(row: TraceRow) -> dict[str, str]:
    return locations(row.SpanAttributes)


# --- every dialect ----------------------------------------------------------------------------
def test_assays_own_spans_keep_the_message_attributes_once() -> None:
    input_messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": LONG}]}])
    full, row, call = _stored(
        {
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: "openai",
            sc.REQUEST_MODEL: "gpt-4o-mini",
            sc.INPUT_MESSAGES: input_messages,
            sc.OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [ANSWER]}]),
            sc.SYSTEM_INSTRUCTIONS: "short",
            sc.TOOL_DEFINITIONS: TOOLS,
            "app.note": "n" * 1000,  # long, not content, but the row's attributes map has it
        }
    )
    assert _shortened(row) == {
        sc.INPUT_MESSAGES: "llm_calls.input_messages",
        sc.OUTPUT_MESSAGES: "llm_calls.output_messages",
        sc.TOOL_DEFINITIONS: "llm_calls.tool_definitions",
        "app.note": "llm_calls.attributes",
    }
    assert call.input_messages == full.SpanAttributes[sc.INPUT_MESSAGES]
    assert row.SpanAttributes[sc.SYSTEM_INSTRUCTIONS] == "short"  # short: kept as it is
    assert row.SpanAttributes[sc.REQUEST_MODEL] == "gpt-4o-mini"


def test_older_indexed_prompt_attributes_point_into_the_messages() -> None:
    _full, row, call = _stored(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            sc.REQUEST_MODEL: "gpt-4o-mini",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": LONG,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": ANSWER,
            "gen_ai.completion.0.finish_reason": "stop",
        }
    )
    assert call.dialect == "openllmetry"
    assert _shortened(row) == {
        "gen_ai.prompt.1.content": "llm_calls.input_messages#/1/parts/0/content",
        "gen_ai.completion.0.content": "llm_calls.output_messages#/0/parts/0/content",
    }
    assert json.loads(call.input_messages)[1]["parts"][0]["content"] == LONG


def test_a_thousand_indexed_messages_are_each_found_once() -> None:
    attrs: dict[str, Any] = {"llm.request.type": "chat", sc.REQUEST_MODEL: "m"}
    for i in range(1000):
        attrs[f"gen_ai.prompt.{i}.role"] = "user"
        attrs[f"gen_ai.prompt.{i}.content"] = f"{i:04} " + "x" * 300
    attrs["gen_ai.prompt.1000.content"] = "0000 " + "x" * 300  # the same text as message 0
    _, row, _ = _stored(attrs)
    where = _shortened(row)
    assert len(where) == 1001
    assert where["gen_ai.prompt.999.content"] == "llm_calls.input_messages#/999/parts/0/content"
    assert where["gen_ai.prompt.1000.content"] == "llm_calls.input_messages#/0/parts/0/content"


def test_openllmetry_tool_calls_and_functions_offered() -> None:
    arguments = json.dumps({"castles": ["Chambord"] * 60})
    function = json.dumps({"type": "object", "properties": {"q": {"description": "d" * 300}}})
    _full, row, _call = _stored(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            sc.REQUEST_MODEL: "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 9,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": LONG,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.tool_calls.0.id": "call_1",
            "gen_ai.completion.0.tool_calls.0.name": "castles",
            "gen_ai.completion.0.tool_calls.0.arguments": arguments,
            "llm.request.functions.0.name": "castles",
            "llm.request.functions.0.parameters": function,
            "traceloop.entity.input": "i" * 500,
        }
    )
    where = _shortened(row)
    assert where["gen_ai.prompt.0.content"] == "llm_calls.input_messages#/0/parts/0/content"
    assert where["llm.request.functions.0.parameters"] == "llm_calls.attributes"
    assert where["traceloop.entity.input"] == "llm_calls.attributes"
    # The arguments were parsed into the message (re-encoded): not there character for
    # character, so they stay whole.
    assert "gen_ai.completion.0.tool_calls.0.arguments" not in where
    assert row.SpanAttributes["gen_ai.completion.0.tool_calls.0.arguments"] == arguments


def test_openlit_messages_on_the_span_and_in_its_older_events() -> None:
    on_span = {
        "telemetry.sdk.name": "openlit",
        sc.OPERATION_NAME: "chat",
        sc.REQUEST_MODEL: "gpt-4o-mini",
        "gen_ai.usage.cost": 0.001,
        sc.INPUT_MESSAGES: json.dumps([{"role": "user", "content": LONG}]),
    }
    _, row, call = _stored(on_span)
    assert call.dialect == "openlit"
    assert _shortened(row) == {sc.INPUT_MESSAGES: "llm_calls.input_messages"}

    in_events = {k: v for k, v in on_span.items() if k != sc.INPUT_MESSAGES}
    events = (("gen_ai.content.prompt", {"gen_ai.prompt": LONG}),)
    full, row, call = _stored(in_events, events=events)
    assert LONG in call.input_messages
    assert sc.CONTENT_LOCATION not in row.SpanAttributes  # events stay whole
    assert row.Events_Attributes == full.Events_Attributes == [{"gen_ai.prompt": LONG}]


def test_openinference_indexed_messages_and_its_raw_request_kept_whole() -> None:
    request = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": LONG}]})
    _full, row, call = _stored(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": LONG,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
            "llm.prompt_template.template": "{question} " * 40,
            "input.value": request,
        }
    )
    assert call.dialect == "openinference"
    assert _shortened(row) == {
        "llm.input_messages.0.message.content": "llm_calls.input_messages#/0/parts/0/content",
        "llm.output_messages.0.message.content": "llm_calls.output_messages#/0/parts/0/content",
        "llm.prompt_template.template": "llm_calls.attributes",
    }
    # The raw request is in the row only parsed into messages: not its every character.
    assert row.SpanAttributes["input.value"] == request


def test_spans_without_a_call_and_folded_calls_stay_whole() -> None:
    (plain,) = _batch(make_request("svc", make_span(attrs={"note": "n" * 1000}))).traces
    assert plain.SpanAttributes["note"] == "n" * 1000

    # Two spans of one call (a client's own span inside an instrumentation's): the inner one
    # gets no llm_calls row of its own, so its content stays whole in otel_traces.
    outer = make_span(attrs={sc.REQUEST_MODEL: "m", sc.INPUT_MESSAGES: LONG}, duration_ns=10**9)
    inner = make_span(
        attrs={sc.REQUEST_MODEL: "m", sc.INPUT_MESSAGES: LONG + "!"},
        trace_id=outer.trace_id,
        parent_span_id=outer.span_id,
        start_ns=outer.start_time_unix_nano + 1,
        duration_ns=10,
    )
    batch = _batch(make_request("svc", outer, inner))
    assert len(batch.llm_calls) == 1
    rows = {row.SpanId: row for row in batch.traces}
    assert rows[inner.span_id.hex()].SpanAttributes[sc.INPUT_MESSAGES] == LONG + "!"
    assert _shortened(rows[outer.span_id.hex()]) == {sc.INPUT_MESSAGES: "llm_calls.input_messages"}


def test_what_cannot_be_found_again_stays_a_preview_with_its_location() -> None:
    _, row, call = _stored({sc.REQUEST_MODEL: "m", sc.INPUT_MESSAGES: LONG})
    expired = asdict(call) | {"input_messages": ""}  # retention's `content` emptied it
    shown = restore_content(row.SpanAttributes, expired)
    assert shown[sc.INPUT_MESSAGES] == preview(LONG)
    assert locations(shown) == {sc.INPUT_MESSAGES: "llm_calls.input_messages"}


def test_previews_are_of_the_redacted_text() -> None:
    """Redaction runs in the receiver, before the spool: both tables hold the redacted text."""
    secret = "ada@example.com"
    messages = json.dumps([{"role": "user", "content": f"Mail {secret}. " + LONG}])
    request = make_request(
        "svc", make_span(attrs={sc.REQUEST_MODEL: "m", sc.INPUT_MESSAGES: messages})
    )
    assert redact_request(request, Redactor(["email"]))
    batch = _batch(request)
    ((row,), (call,)) = batch.traces, batch.llm_calls
    assert "[REDACTED:email]" in row.SpanAttributes[sc.INPUT_MESSAGES]
    assert restore_content(row.SpanAttributes, asdict(call))[sc.INPUT_MESSAGES] == (
        call.input_messages
    )
    assert secret not in json.dumps([asdict(row), asdict(call)])


# --- the golden corpus -------------------------------------------------------------------------
@pytest.fixture
def builtin_prices() -> Any:
    before = pricing.current()
    pricing.activate(pricing.builtin_table())
    yield
    pricing.activate(before)


def _corpus_batches(full: bool) -> list[TraceBatch]:
    return [_batch(request, full=full) for request in corpus()]


def _digests(rows: list[Any]) -> dict[str, str]:
    _, columns, names = insert_arguments(rows)
    return {name: digest(column) for name, column in zip(names, columns, strict=True)}


def test_on_the_golden_corpus_only_the_shortened_attributes_change(builtin_prices: None) -> None:
    """With previews (the golden rows) and with `trace_content: full` (the golden rows before
    previews existed), every column of every table is the same but `otel_traces`'
    SpanAttributes, and each changed row restores to its full attributes from its call's row."""
    golden = json.loads(ROWS.read_text())
    full, short = _corpus_batches(True), _corpus_batches(False)
    for table, field in _FIELDS.items():
        with_full = _digests([r for b in full for r in getattr(b, field)])
        with_previews = _digests([r for b in short for r in getattr(b, field)])
        assert with_previews == {k: v for k, v in golden[table].items() if k != "rows"}
        if table == "otel_traces":
            assert with_full.pop("SpanAttributes") != with_previews.pop("SpanAttributes")
        assert with_full == with_previews
    shortened = 0
    for f, s in zip(full, short, strict=True):
        calls = {(c.trace_id, c.span_id): asdict(c) for c in s.llm_calls}
        for full_row, row in zip(f.traces, s.traces, strict=True):
            assert asdict(full_row) | {"SpanAttributes": {}} == asdict(row) | {"SpanAttributes": {}}
            if full_row.SpanAttributes != row.SpanAttributes:
                shortened += 1
                call = calls[(row.TraceId, row.SpanId)]
                assert restore_content(row.SpanAttributes, call) == full_row.SpanAttributes
    assert shortened > 50


_FIELDS = {
    "llm_calls": "llm_calls",
    "trace_spans": "spans",
    "tool_calls": "tool_calls",
    "otel_traces": "traces",
}


def test_the_trace_view_restores_a_call_whose_trace_spans_row_is_not_stored(
    embedded_store: EmbeddedStore,
) -> None:
    """The writer stores otel_traces, then llm_calls, then trace_spans; a trace read in between
    (or whose trace_spans rows were dead-lettered) falls back to the raw spans, and its LLM call
    still shows as one, whole: its messages, and its attributes without the previews."""
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": LONG}]}])
    batch = _batch(
        make_request(
            f"window-{uuid.uuid4().hex[:8]}",
            make_span(attrs={sc.REQUEST_MODEL: "gpt-4o-mini", sc.INPUT_MESSAGES: messages}),
        )
    )
    for rows in (batch.traces, batch.llm_calls):  # not batch.spans
        embedded_store.insert_rows(rows)
    trace_id = batch.traces[0].TraceId
    trace = traces.get_trace(embedded_store, trace_id)
    assert trace is not None
    (span,) = trace.spans
    assert span["llm"]
    detail = traces.span_detail(embedded_store, trace_id, span)
    assert detail["attributes"][sc.INPUT_MESSAGES] == messages
    assert sc.CONTENT_LOCATION not in detail["attributes"]
    assert detail["call"]["input_messages"] == batch.llm_calls[0].input_messages


# --- the setting and the running collector ----------------------------------------------------
def test_the_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trace_content == "preview"
    monkeypatch.setenv("ASSAY_TRACE_CONTENT", "full")
    assert load_settings().trace_content == "full"
    with pytest.raises(ValueError):
        load_settings(trace_content="half")


@pytest.fixture(scope="module")
def full_content(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("full-content")
    running = start_collector(base / "data", base / "log", "--trace-content", "full")
    yield running
    running.stop()


MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": LONG}]}])


def _send(collector: RunningCollector, attrs: dict[str, Any] | None = None) -> tuple[str, str, str]:
    service = f"content-{uuid.uuid4().hex[:8]}"
    messages = MESSAGES
    span = make_span(attrs=attrs or {sc.REQUEST_MODEL: "gpt-4o-mini", sc.INPUT_MESSAGES: messages})
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=make_request(service, span).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", 1)
    return service, span.trace_id.hex(), messages


def _span_attributes(collector: RunningCollector, service: str) -> dict[str, str]:
    (row,) = collector.wait_for_rows(
        f"SELECT SpanAttributes FROM assay.otel_traces WHERE ServiceName = '{service}'", 1
    )
    return dict(row["SpanAttributes"])


@pytest.mark.integration
def test_a_collector_keeps_a_preview_and_its_trace_page_shows_it_whole(
    collector: RunningCollector,
) -> None:
    service, trace_id, messages = _send(collector)
    stored = _span_attributes(collector, service)
    assert stored[sc.INPUT_MESSAGES] == preview(messages)
    assert locations(stored) == {sc.INPUT_MESSAGES: "llm_calls.input_messages"}
    shown = _page(collector, trace_id)
    assert messages in shown  # the attribute whole, as the span carried it
    assert sc.CONTENT_LOCATION not in shown


def _page(collector: RunningCollector, trace_id: str) -> str:
    """The trace page with the trace's one span chosen, its HTML's quotes unescaped. Fetched
    once: the call's llm_calls and otel_traces rows are stored, so the page shows it whole
    even before its trace_spans row is stored (the writer's last of the three)."""
    trace = httpx.get(f"{collector.http_url}/api/traces/{trace_id}").json()
    (span,) = trace["spans"]
    page = httpx.get(f"{collector.http_url}/traces/{trace_id}", params={"span": span["span_id"]})
    assert page.status_code == 200
    return page.text.replace("&#34;", '"').replace("&quot;", '"')


@pytest.mark.integration
def test_the_trace_page_finds_text_inside_the_messages_and_in_the_attributes_map(
    collector: RunningCollector,
) -> None:
    template = "Answer {question} in the voice of a castle guide. " * 10
    service, trace_id, _ = _send(
        collector,
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": LONG,
            "llm.prompt_template.template": template,
        },
    )
    stored = _span_attributes(collector, service)
    assert locations(stored) == {
        "llm.input_messages.0.message.content": "llm_calls.input_messages#/0/parts/0/content",
        "llm.prompt_template.template": "llm_calls.attributes",
    }
    shown = _page(collector, trace_id)
    assert f"<code>{LONG}</code>" in shown
    assert f"<code>{template}</code>" in shown
    assert sc.CONTENT_LOCATION not in shown


@pytest.mark.integration
def test_a_collector_set_to_full_content_keeps_it_whole(full_content: RunningCollector) -> None:
    service, _, messages = _send(full_content)
    stored = _span_attributes(full_content, service)
    assert stored[sc.INPUT_MESSAGES] == messages
    assert sc.CONTENT_LOCATION not in stored
