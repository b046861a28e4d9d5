"""Agent structure of spans in any dialect: each span's kind in one vocabulary (`span_kinds`),
its agent, its tool call as a `tool_calls` row, and what the trace summary reads of it.

Each dialect module reads its own marks (`span_kind`, `agent_name`, `tool_fields`); the most
specific marks are tried first, the current GenAI conventions last, as for LLM calls. A span no
dialect marks is a plain `span`, or `llm` when it became an LLM call row anyway (OpenLLMetry's
LLM spans carry no kind)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.dialects import genai, openinference, openllmetry
from assay.collector.normalize.otlp import as_text
from assay.collector.schema import LlmCallRow, ToolCallRow, TraceSpanRow
from assay.instrumentation import semconv as sc

# Tried in this order: the first that gives the span a kind describes it.
READERS = (openinference, openllmetry, genai)
# Where any dialect puts the conversation and the user a span belongs to, in order of trust.
SESSION_KEYS = tuple(dict.fromkeys(key for reader in READERS for key in reader.SESSION_KEYS))
USER_KEYS = tuple(dict.fromkeys(key for reader in READERS for key in reader.USER_KEYS))
# Every name `agent_rows` reads of a span no reader gives a kind: a span with none of them (a
# web service's, most spans) is a plain span without asking each reader (tests/collector/
# test_agent_runs.py keeps each reader's KIND_KEYS to what its `span_kind` reads).
MARK_KEYS = frozenset(
    {sc.ERROR_TYPE, *USER_KEYS, *SESSION_KEYS, *(key for r in READERS for key in r.KIND_KEYS)}
)


def _first(attrs: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, ""):
            return as_text(value)
    return ""


# One trace span row and, for a tool span, its tool call row (both filled further by
# `link_agent_rows` once the batch's LLM calls are known): a plain pair, every span gives one.
SpanMarks = tuple[TraceSpanRow, ToolCallRow | None]


def agent_rows(
    attrs: Mapping[str, Any],
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    start_ns: int,
    end_ns: int,
    service_name: str,
    span_name: str,
    is_error: bool,
    status_message: str,
) -> SpanMarks:
    """The rows one span gives, from its attributes (a tool call's arguments and result are
    content each dialect declares: the receiver redacted them before the spool)."""
    end_ns = end_ns if end_ns > start_ns else start_ns
    # A span with none of the names the readers mark kinds with (nor a user, session or error
    # type) is a plain span, without asking each reader.
    plain = MARK_KEYS.isdisjoint(attrs)
    error_type = None if plain else attrs.get(sc.ERROR_TYPE)
    error_type = "" if not error_type else as_text(error_type)
    status = "error" if is_error or error_type else "ok"
    span = TraceSpanRow(
        trace_id,
        span_id,
        parent_span_id,
        start_ns,
        end_ns,
        service_name,
        span_name,
        kinds.SPAN,
        status,
    )
    if plain:
        return span, None
    # Set only when found (most spans name neither): the row's defaults are "".
    user_id = _first(attrs, USER_KEYS)
    if user_id:
        span.user_id = user_id
    session_id = _first(attrs, SESSION_KEYS)
    if session_id:
        span.session_id = session_id
    for reader in READERS:
        kind = reader.span_kind(attrs)
        if kind is None:
            continue
        span.kind = kind
        span.dialect = reader.NAME
        # A LangGraph graph names no agent: its own name is its runs' agent.
        span.agent_name = reader.agent_name(attrs) or openinference.graph_name(attrs, span_name)
        if kind != kinds.TOOL:
            return span, None
        fields = reader.tool_fields(attrs)
        span.tool_name = fields.name
        tool = ToolCallRow(
            timestamp=start_ns,
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            service_name=service_name,
            tool_name=fields.name or span_name,
            tool_call_id=fields.call_id,
            tool_type=fields.type,
            agent_name=span.agent_name,
            arguments=fields.arguments,
            result=fields.result,
            status=status,
            error_type=error_type,
            error_message=status_message if status == "error" else "",
            duration_ms=(end_ns - start_ns) / 1e6,
            user_id=span.user_id,
            session_id=span.session_id,
            dialect=reader.NAME,
        )
        return span, tool
    return span, None


def link_agent_rows(
    spans: list[TraceSpanRow], tools: list[ToolCallRow], calls: list[LlmCallRow]
) -> None:
    """Fill what one span cannot say alone, within a writer batch: a span with an LLM call row
    carries its tokens, cost, user, session and prompt (and is an LLM span whatever its marks);
    a tool call that names no agent takes the nearest agent above it."""
    by_id = {(span.trace_id, span.span_id): span for span in spans}
    for call in calls:
        span = by_id.get((call.trace_id, call.span_id))
        if span is None:
            continue
        span.llm = True
        if span.kind == kinds.SPAN:
            span.kind = kinds.EMBEDDING if call.operation == sc.OP_EMBEDDINGS else kinds.LLM
        span.input_tokens = call.input_tokens
        span.output_tokens = call.output_tokens
        span.cost_usd = call.cost_usd
        span.user_id = span.user_id or call.user_id
        span.session_id = span.session_id or call.session_id
        span.prompt_name = call.prompt_name
        span.prompt_version = call.prompt_version
    for tool in tools:
        if tool.agent_name:
            continue
        parent = by_id.get((tool.trace_id, tool.parent_span_id))
        seen = 0
        while parent is not None and seen < 64:  # a cycle of parent ids must not hang the writer
            if parent.agent_name:
                tool.agent_name = parent.agent_name
                break
            parent = by_id.get((parent.trace_id, parent.parent_span_id))
            seen += 1
