"""The OpenAI Agents SDK (`openai-agents`, import `agents`): its tracing as OTel GenAI agent spans.

Assay adds one tracing processor to the SDK's trace provider (`agents.add_trace_processor`, when
`agents` is imported) and turns what the SDK reports into spans of the GenAI conventions::

    SDK trace / span          OTel span
    trace                     invoke_workflow {workflow name}   (group_id → gen_ai.conversation.id)
    agent                     invoke_agent {agent}               gen_ai.agent.name
    function (a tool)         execute_tool {tool}                gen_ai.tool.*, arguments, result
    handoff                   handoff {to agent}                 assay.agent.handoff.from / to
    guardrail                 guardrail {name}                   assay.guardrail.name / triggered
    mcp_tools                 tools/list {server}                mcp.method.name
    custom                    {its name}
    generation, response      the LLM call: see below
    task, turn                no span of their own (their children go to the nearest one above)

One LLM call, one LLM span: each span is made current while the SDK's step runs, so the span of
the client the model uses (openai, litellm: instrumented by Assay) nests under its agent and is
the call's LLM span. The SDK's own record of the call (a generation or response span) becomes an
LLM span only when no instrumented client made the call (a model of the application's own), from
what the SDK recorded: model, usage and, for the Responses API, the output.

The SDK reports nothing while its tracing is disabled (`OPENAI_AGENTS_DISABLE_TRACING`,
`set_tracing_disabled`), and leaves tool arguments and results out with
`RunConfig(trace_include_sensitive_data=False)`; `ASSAY_CAPTURE_CONTENT=false` leaves them out
too. The SDK's default processor (export to OpenAI) stays; `agents.set_trace_processors([...])`
replaces every processor, Assay's too, so a list without the default one should hold
`OpenAIAgentsInstrumentor().processor` (or be set before `instrument()`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from time import time_ns
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from assay.instrumentation import semconv
from assay.instrumentation._spans import (
    Attributes,
    report_internal_error,
    start_call,
    to_json,
    watching_llm_calls,
    with_tool_span,
)
from assay.instrumentation.providers import _openai_responses as responses
from assay.instrumentation.providers._instrumentor import LibraryInstrumentor
from assay.instrumentation.providers._messages import field as msg_field
from assay.instrumentation.providers._messages import int_or_none
from assay.instrumentation.providers._request import server_attributes
from assay.instrumentation.providers.openai import provider_of_server

# SDK span types that get no span of their own (their children are parented above them).
_PASSED_THROUGH = frozenset({"task", "turn", "speech", "speech_group", "transcription"})
# SDK span types that stand for one LLM call.
_MODEL_CALLS = frozenset({"generation", "response"})
# `error.type` of a step the SDK marked failed: it reports a message, not an exception class.
_OTHER_ERROR = "_OTHER"


@dataclass(slots=True)
class _Open:
    """A span in flight: the OTel span (None for a passed-through or model-call step), the
    context its children start in, and the detach token of making that context current."""

    span: Span | None
    context: otel_context.Context
    token: object | None = None
    started: int = 0
    llm_calls: list[bool] = field(default_factory=list)  # client LLM spans seen inside


class AgentSpans:
    """A tracing processor of the Agents SDK (its `TracingProcessor` interface, duck-typed so
    that importing this module imports no `agents`). Every callback is guarded: an Assay failure
    is logged once and the agent run goes on."""

    def __init__(self) -> None:
        self.tracer: trace.Tracer | None = None  # None: uninstrumented, every callback passes
        self.capture_content = True
        self._lock = threading.Lock()
        # By SDK trace id, then by SDK span id (the trace's own entry under its trace id), so
        # an SDK trace that ends drops what is left of it.
        self._open: dict[str, dict[str, _Open]] = {}

    # --- the SDK's TracingProcessor interface ---------------------------------------------
    def on_trace_start(self, sdk_trace: Any) -> None:
        tracer = self.tracer
        if tracer is None or sdk_trace.trace_id in self._open:  # registered twice: once is enough
            return
        try:
            name = str(getattr(sdk_trace, "name", "") or "")
            attributes: Attributes = {semconv.OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW}
            if name:
                attributes[semconv.WORKFLOW_NAME] = name
            group_id = getattr(sdk_trace, "group_id", None)
            if group_id:
                attributes[semconv.CONVERSATION_ID] = str(group_id)
            span = tracer.start_span(
                f"{semconv.OP_INVOKE_WORKFLOW} {name}".strip(),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
            )
            entry = self._enter(span, set_span_in_context(span))
            with self._lock:
                self._open[sdk_trace.trace_id] = {sdk_trace.trace_id: entry}
        except Exception:
            report_internal_error("starting an agents trace")

    def on_trace_end(self, sdk_trace: Any) -> None:
        if self.tracer is None:
            return
        try:
            with self._lock:
                spans = self._open.pop(sdk_trace.trace_id, None)
            if not spans:
                return
            root = spans.pop(sdk_trace.trace_id, None)
            for entry in spans.values():  # steps the SDK never finished
                if entry.span is not None:
                    entry.span.end()
            if root is not None:
                _leave(root)
                if root.span is not None:
                    root.span.end()
        except Exception:
            report_internal_error("ending an agents trace")

    def on_span_start(self, sdk_span: Any) -> None:
        tracer = self.tracer
        if tracer is None:
            return
        try:
            if sdk_span.span_id in self._open.get(sdk_span.trace_id, {}):
                return  # registered twice
            parent = self._parent(sdk_span)
            data = sdk_span.span_data
            kind = data.type
            if kind in _PASSED_THROUGH:
                entry = _Open(None, parent)
            elif kind in _MODEL_CALLS:
                context, seen = watching_llm_calls(parent)
                entry = self._enter(None, context, started=time_ns(), llm_calls=seen)
            else:
                name, attributes = self._describe_start(kind, data)
                span = tracer.start_span(name, context=parent, attributes=attributes)
                context = set_span_in_context(span, parent)
                if kind == "function":
                    context = with_tool_span(context, str(data.name), span)
                entry = self._enter(span, context)
            with self._lock:
                spans = self._open.get(sdk_span.trace_id)
                if spans is not None:
                    spans[sdk_span.span_id] = entry
                else:  # a span of a trace started before instrument(): its own root
                    self._open[sdk_span.trace_id] = {sdk_span.span_id: entry}
        except Exception:
            report_internal_error("starting an agents span")

    def on_span_end(self, sdk_span: Any) -> None:
        if self.tracer is None:
            return
        try:
            with self._lock:
                spans = self._open.get(sdk_span.trace_id)
                entry = spans.pop(sdk_span.span_id, None) if spans is not None else None
            if entry is None:
                return
            _leave(entry)
            data = sdk_span.span_data
            if data.type in _MODEL_CALLS:
                if not entry.llm_calls:
                    self._record_model_call(sdk_span, entry)
                return
            span = entry.span
            if span is None:
                return
            self._describe_end(span, data.type, data)
            error = sdk_span.error
            if error:
                span.set_attribute(semconv.ERROR_TYPE, _OTHER_ERROR)
                span.set_status(Status(StatusCode.ERROR, str(error.get("message") or "")))
            span.end()
        except Exception:
            report_internal_error("ending an agents span")

    def shutdown(self) -> None:
        """Spans go out through the OTel tracer provider, which has its own shutdown."""

    def force_flush(self) -> None:
        """Nothing is held here: the OTel provider's `force_flush` sends what is pending."""

    # --- helpers -----------------------------------------------------------------------------
    def _parent(self, sdk_span: Any) -> otel_context.Context:
        """The context the span starts in: its SDK parent's, else its trace's, else the current."""
        with self._lock:
            spans = self._open.get(sdk_span.trace_id)
            if spans is not None:
                entry = spans.get(sdk_span.parent_id or sdk_span.trace_id) or spans.get(
                    sdk_span.trace_id
                )
                if entry is not None:
                    return entry.context
        return otel_context.get_current()

    @staticmethod
    def _enter(span: Span | None, context: otel_context.Context, **details: Any) -> _Open:
        """Make `context` current while the SDK's step runs: client spans nest under it."""
        entry = _Open(span, context, **details)
        entry.token = otel_context.attach(context)
        return entry

    def _describe_start(self, kind: str, data: Any) -> tuple[str, Attributes]:
        if kind == "agent":
            name = str(data.name)
            return f"{semconv.OP_INVOKE_AGENT} {name}", {
                semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT,
                semconv.AGENT_NAME: name,
            }
        if kind == "function":
            name = str(data.name)
            return f"{semconv.OP_EXECUTE_TOOL} {name}", {
                semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                semconv.TOOL_NAME: name,
                semconv.TOOL_TYPE: semconv.TOOL_TYPE_FUNCTION,
            }
        if kind == "handoff":
            return "handoff", {}
        if kind == "guardrail":
            name = str(data.name)
            return f"guardrail {name}", {semconv.GUARDRAIL_NAME: name}
        if kind == "mcp_tools":
            server = str(data.server or "")
            return f"{semconv.MCP_METHOD_TOOLS_LIST} {server}".strip(), {
                semconv.MCP_METHOD_NAME: semconv.MCP_METHOD_TOOLS_LIST,
                semconv.MCP_SERVER_NAME: server,
            }
        return str(getattr(data, "name", "") or kind), {}

    def _describe_end(self, span: Span, kind: str, data: Any) -> None:
        """What the SDK filled in while the step ran."""
        if kind == "function":
            mcp = data.mcp_data
            if isinstance(mcp, Mapping) and mcp.get("server"):
                span.set_attribute(semconv.TOOL_TYPE, semconv.TOOL_TYPE_EXTENSION)
                span.set_attribute(semconv.MCP_SERVER_NAME, str(mcp["server"]))
            if self.capture_content:
                if data.input is not None:
                    span.set_attribute(semconv.TOOL_CALL_ARGUMENTS, _text(data.input))
                if data.output is not None:
                    span.set_attribute(semconv.TOOL_CALL_RESULT, _text(data.output))
        elif kind == "handoff":
            if data.from_agent:
                span.set_attribute(semconv.AGENT_HANDOFF_FROM, str(data.from_agent))
            if data.to_agent:
                span.set_attribute(semconv.AGENT_HANDOFF_TO, str(data.to_agent))
                span.update_name(f"handoff {data.to_agent}")
        elif kind == "guardrail":
            span.set_attribute(semconv.GUARDRAIL_TRIGGERED, bool(data.triggered))

    def _record_model_call(self, sdk_span: Any, entry: _Open) -> None:
        """The LLM span of a call no instrumented client made, from the SDK's record of it."""
        tracer = self.tracer
        if tracer is None:
            return
        data = sdk_span.span_data
        config = data.model_config if data.type == "generation" else None
        server = server_attributes(config.get("base_url") if isinstance(config, Mapping) else None)
        provider = provider_of_server(server)
        response = data.response if data.type == "response" else None
        model = data.model if data.type == "generation" else msg_field(response, "model")
        model = str(model) if model else None
        attributes: Attributes = {
            semconv.OPERATION_NAME: semconv.OP_CHAT,
            semconv.PROVIDER_NAME: provider,
            **server,
        }
        if model:
            attributes[semconv.REQUEST_MODEL] = model
        call = start_call(
            tracer,
            semconv.OP_CHAT,
            provider,
            model,
            attributes,
            context=entry.context,
            start_time=entry.started or None,
        )
        if call is None:
            return
        outcome: Attributes = {}
        if response is not None:
            outcome = responses.response_attributes(call, response, model, self.capture_content)
            if self.capture_content and data.input is not None:
                messages = responses.input_messages(data.input)
                if messages:
                    outcome[semconv.INPUT_MESSAGES] = to_json(messages)
        else:
            _add_generation_usage(call, outcome, model, data.usage)
        error = sdk_span.error
        if error:
            outcome[semconv.ERROR_TYPE] = _OTHER_ERROR
        call.end(outcome, _StepFailed(str(error.get("message") or "")) if error else None)


class _StepFailed(Exception):
    """What the SDK reported as a failed model call (a message, not the exception)."""


def _leave(entry: _Open) -> None:
    if entry.token is None:
        return
    token, entry.token = entry.token, None
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:
        report_internal_error("restoring the context after an agents span")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else to_json(value)


def _add_generation_usage(call: Any, attributes: Attributes, model: str | None, usage: Any) -> None:
    if not isinstance(usage, Mapping):
        call.add_usage(attributes, model, None, None)
        return
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    call.add_usage(
        attributes,
        model,
        int_or_none(usage.get("input_tokens")),
        int_or_none(usage.get("output_tokens")),
        cached_input_tokens=int_or_none(msg_field(input_details, "cached_tokens")),
        reasoning_output_tokens=int_or_none(msg_field(output_details, "reasoning_tokens")),
    )


class OpenAIAgentsInstrumentor(LibraryInstrumentor):
    """Adds Assay's tracing processor to the Agents SDK once `agents` is imported."""

    library = "openai-agents"

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "processor"):
            self.processor = AgentSpans()
            self._registered = False

    def modules(self) -> Iterable[str]:
        return ("agents",)

    def _start(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self.processor.capture_content = capture_content
        self.processor.tracer = tracer

    def _on_module(self, module: ModuleType) -> None:
        # The SDK has no way to remove one processor: after `uninstrument()` it stays
        # registered and passes everything by; instrumenting again reuses it.
        if not self._registered:
            module.add_trace_processor(self.processor)
            self._registered = True

    def _stop(self) -> None:
        self.processor.tracer = None
