"""Building OTLP requests by hand for tests: spans with chosen attributes, ids and times."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(value))
        return out
    return AnyValue(string_value=str(value))


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def make_span(
    name: str = "chat gpt-4o",
    attrs: dict[str, Any] | None = None,
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent_span_id: bytes = b"",
    start_ns: int | None = None,
    duration_ns: int = 1_500_000_000,
    error: bool = False,
    events: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> Span:
    start = start_ns or time.time_ns()
    span = Span(
        trace_id=trace_id or os.urandom(16),
        span_id=span_id or os.urandom(8),
        parent_span_id=parent_span_id,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ns,
        status=Status(
            code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET,
            message="boom" if error else "",
        ),
    )
    span.attributes.extend(key_values(attrs or {}))
    for event_name, event_attrs in events:
        event = span.events.add(name=event_name, time_unix_nano=start)
        event.attributes.extend(key_values(event_attrs))
    return span


def make_request(service: str, *spans: Span) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": service}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    scope_spans.spans.extend(spans)
    return request


def make_log_record(
    event_name: str,
    *,
    span: Span | None = None,
    attrs: dict[str, Any] | None = None,
    body: Any = None,
) -> LogRecord:
    """A log record as GenAI instrumentations emit events: named, tied to a span's ids."""
    record = LogRecord(time_unix_nano=time.time_ns(), event_name=event_name)
    if span is not None:
        record.trace_id, record.span_id = span.trace_id, span.span_id
    record.attributes.extend(key_values(attrs or {}))
    if body is not None:
        record.body.CopyFrom(any_value(body))
    return record


def make_log_request(service: str, *records: LogRecord) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": service}))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "tests"
    scope_logs.log_records.extend(records)
    return request
