"""OTLP trace requests → `otel_traces` and `trace_spans` rows for every span, `llm_calls` rows for
LLM spans and `tool_calls` rows for tool spans. A call's long content is kept once, in its
`llm_calls` row, with a preview in `otel_traces` (trace_content.py; `trace_content: full` keeps
both)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from assay.collector.normalize.agents import agent_rows, link_agent_rows
from assay.collector.normalize.dialects import GenAIEvent, call_attributes
from assay.collector.normalize.llm_calls import llm_call_row
from assay.collector.normalize.otlp import attributes_and_text, text_attributes
from assay.collector.normalize.trace_content import shorten_content
from assay.collector.schema import LlmCallRow, ToolCallRow, TraceRow, TraceSpanRow
from assay.instrumentation import semconv as sc

# Names as the OpenTelemetry Collector's ClickHouse exporter writes them.
SPAN_KINDS = {
    Span.SPAN_KIND_UNSPECIFIED: "Unspecified",
    Span.SPAN_KIND_INTERNAL: "Internal",
    Span.SPAN_KIND_SERVER: "Server",
    Span.SPAN_KIND_CLIENT: "Client",
    Span.SPAN_KIND_PRODUCER: "Producer",
    Span.SPAN_KIND_CONSUMER: "Consumer",
}
STATUS_CODES = {
    Status.STATUS_CODE_UNSET: "Unset",
    Status.STATUS_CODE_OK: "Ok",
    Status.STATUS_CODE_ERROR: "Error",
}
_GENAI_EVENT_PREFIX = "gen_ai."


@dataclass(slots=True)
class TraceBatch:
    traces: list[TraceRow] = field(default_factory=list)
    llm_calls: list[LlmCallRow] = field(default_factory=list)
    spans: list[TraceSpanRow] = field(default_factory=list)
    tool_calls: list[ToolCallRow] = field(default_factory=list)

    def link(self, *, full_content: bool = False) -> None:
        """Once the batch's LLM calls are final (stacked calls folded, log messages attached):
        complete the span and tool rows from them and from each other, and, unless
        `full_content`, keep in `otel_traces` only a preview of the content the calls' rows hold
        (normalize/trace_content.py)."""
        link_agent_rows(self.spans, self.tool_calls, self.llm_calls)
        if not full_content:
            shorten_content(self.traces, self.llm_calls)


def normalize_traces(
    request: ExportTraceServiceRequest,
    batch: TraceBatch | None = None,
) -> TraceBatch:
    """Append the rows of one request to `batch` (a new one if None) and return it. (Content
    was redacted in the receiver, before the spool: receivers/content.py.)"""
    batch = batch if batch is not None else TraceBatch()
    # Every field of a span is read once (each read through the protobuf runtime costs about as
    # much as a small function call), and the rows are built positionally.
    traces, spans, calls = batch.traces, batch.spans, batch.llm_calls
    for resource_spans in request.resource_spans:
        resource, resource_text = attributes_and_text(resource_spans.resource.attributes)
        service_name = str(resource.get(sc.SERVICE_NAME, "unknown_service"))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name, scope_version = scope.name, scope.version
            for span in scope_spans.spans:
                attrs, span_text = attributes_and_text(span.attributes)
                status = span.status
                status_message = status.message
                trace_id = span.trace_id.hex()
                span_id = span.span_id.hex()
                parent_span_id = span.parent_span_id.hex()
                status_code = STATUS_CODES.get(status.code, "Unset")
                is_error = status_code == "Error"
                start_ns = span.start_time_unix_nano
                end_ns = span.end_time_unix_nano
                span_name = span.name
                duration = end_ns - start_ns
                row = TraceRow(
                    start_ns,
                    trace_id,
                    span_id,
                    parent_span_id,
                    span.trace_state,
                    span_name,
                    SPAN_KINDS.get(span.kind, "Unspecified"),
                    service_name,
                    resource_text,
                    scope_name,
                    scope_version,
                    span_text,
                    duration if duration > 0 else 0,
                    status_code,
                    status_message,
                    # The events' and links' columns, filled below: lists made here cost less
                    # than the row's default factories.
                    [],
                    [],
                    [],
                    [],
                    [],
                    [],
                    [],
                )
                events = []
                # Slices: iterating a repeated field ends by raising (and catching) IndexError,
                # which costs more than the slice (most spans have neither events nor links).
                for event in span.events[:]:
                    event_name = event.name
                    row.Events_Timestamp.append(event.time_unix_nano)
                    row.Events_Name.append(event_name)
                    event_text = text_attributes(event.attributes)
                    row.Events_Attributes.append(event_text)
                    if event_name.startswith(_GENAI_EVENT_PREFIX):
                        events.append(GenAIEvent(event_name, event_text))
                for link in span.links[:]:
                    row.Links_TraceId.append(link.trace_id.hex())
                    row.Links_SpanId.append(link.span_id.hex())
                    row.Links_TraceState.append(link.trace_state)
                    row.Links_Attributes.append(text_attributes(link.attributes))
                traces.append(row)
                span_row, tool_row = agent_rows(
                    attrs,
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent_span_id,
                    start_ns=start_ns,
                    end_ns=end_ns,
                    service_name=service_name,
                    span_name=span_name,
                    is_error=is_error,
                    status_message=status_message,
                )
                spans.append(span_row)
                if tool_row is not None:
                    batch.tool_calls.append(tool_row)
                call = call_attributes(attrs, events)
                if call is not None:
                    calls.append(
                        llm_call_row(
                            call.attributes,
                            dialect=call.dialect,
                            start_ns=start_ns,
                            end_ns=end_ns,
                            trace_id=trace_id,
                            span_id=span_id,
                            parent_span_id=parent_span_id,
                            service_name=service_name,
                            is_error=is_error,
                            status_message=status_message,
                        )
                    )
    return batch
