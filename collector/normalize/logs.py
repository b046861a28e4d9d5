"""OTLP log requests → `otel_logs` rows."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from assay.collector.normalize.otlp import any_value, as_text, attributes_and_text, text_attributes
from assay.collector.schema import LogRow
from assay.instrumentation import semconv as sc


def normalize_logs(
    request: ExportLogsServiceRequest,
    rows: list[LogRow] | None = None,
) -> list[LogRow]:
    """Append the rows of one request to `rows` (a new list if None) and return it. (Bodies and
    attributes were redacted in the receiver: receivers/content.py.)"""
    rows = rows if rows is not None else []
    for resource_logs in request.resource_logs:
        resource, resource_text = attributes_and_text(resource_logs.resource.attributes)
        service_name = str(resource.get(sc.SERVICE_NAME, "unknown_service"))
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_text = text_attributes(scope.attributes)
            for record in scope_logs.log_records:
                body = as_text(any_value(record.body))
                record_text = text_attributes(record.attributes)
                rows.append(
                    LogRow(
                        Timestamp=record.time_unix_nano or record.observed_time_unix_nano,
                        TraceId=record.trace_id.hex(),
                        SpanId=record.span_id.hex(),
                        TraceFlags=record.flags & 0xFF,
                        SeverityText=record.severity_text,
                        SeverityNumber=int(record.severity_number),
                        ServiceName=service_name,
                        Body=body,
                        ResourceSchemaUrl=resource_logs.schema_url,
                        ResourceAttributes=resource_text,
                        ScopeSchemaUrl=scope_logs.schema_url,
                        ScopeName=scope.name,
                        ScopeVersion=scope.version,
                        ScopeAttributes=scope_text,
                        LogAttributes=record_text,
                        EventName=getattr(record, "event_name", ""),
                    )
                )
    return rows
