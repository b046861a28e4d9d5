"""Scores as OpenTelemetry events: `gen_ai.evaluation.result` log records, the GenAI
conventions' form, so that scores move between tools (another backend, another Assay).

Each record is parented to the span it judges (its trace and span ids), carries
`gen_ai.evaluation.name`, `.score.value`, `.score.label`, `.explanation` (and `error.type`
for an evaluation that failed), plus `assay.score.*` attributes with what the conventions do
not say: the source, the verdict, the direction, the author. Records go through an OTLP log
exporter of their own (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`,
else the endpoint given), batched, flushed at `flush()`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from assay.instrumentation import semconv as sc

__all__ = ["EvaluationEvents", "evaluation_result_attributes"]


def evaluation_result_attributes(
    name: str,
    value: float | None,
    *,
    label: str = "",
    explanation: str = "",
    passed: bool | None = None,
    error: str = "",
    source: str = "",
    direction: str = "",
    author: str = "",
    evaluator_version: str = "",
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The attributes of one `gen_ai.evaluation.result` event."""
    attributes: dict[str, Any] = {sc.EVALUATION_NAME: name}
    if error:
        kind, _, message = error.partition(": ")
        attributes[sc.ERROR_TYPE] = kind or "Error"
        if message:
            attributes[sc.ERROR_MESSAGE] = message
    elif value is not None:
        attributes[sc.EVALUATION_SCORE_VALUE] = float(value)
    optional = {
        sc.EVALUATION_SCORE_LABEL: label,
        sc.EVALUATION_EXPLANATION: explanation,
        sc.SCORE_SOURCE: source,
        sc.SCORE_DIRECTION: direction,
        sc.SCORE_AUTHOR: author,
        sc.EVALUATOR_VERSION: evaluator_version,
    }
    attributes.update({key: text for key, text in optional.items() if text})
    if passed is not None:
        attributes[sc.SCORE_PASSED] = passed
    attributes.update(extra or {})
    return attributes


def _logs_url(endpoint: str | None) -> str | None:
    if os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        return None  # the exporter reads it
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or endpoint
    if not base:
        return None
    return base if base.rstrip("/").endswith("/v1/logs") else base.rstrip("/") + "/v1/logs"


class EvaluationEvents:
    """Sends evaluation results as OTLP log records (HTTP/protobuf) to `endpoint` (a base URL
    such as the collector's http://localhost:4318) unless the environment names one."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create(
            {sc.SERVICE_NAME: service_name} if service_name else {}
        )  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create
        self._provider = LoggerProvider(resource=resource)
        exporter = OTLPLogExporter(
            endpoint=_logs_url(endpoint), headers=dict(headers) if headers else None
        )
        self._provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        self._logger = self._provider.get_logger("assay.evaluators")
        self._lock = threading.Lock()

    def emit(
        self, trace_id: str, span_id: str, attributes: Mapping[str, Any], *, timestamp_ns: int = 0
    ) -> None:
        """One `gen_ai.evaluation.result` record about the span `span_id` of `trace_id` (hex;
        "" when the target is a whole trace, or unknown)."""
        import time

        from opentelemetry import trace
        from opentelemetry._logs import LogRecord

        # The record's trace and span come from its context: the judged span, as a remote parent.
        parent = trace.SpanContext(
            int(trace_id, 16) if trace_id else 0,
            int(span_id, 16) if span_id else 0,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        record = LogRecord(
            timestamp=timestamp_ns or time.time_ns(),
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            attributes=dict(attributes),
            event_name=sc.EVALUATION_RESULT_EVENT,
        )
        with self._lock:
            self._logger.emit(record)

    def flush(self, timeout_s: float = 10.0) -> bool:
        return bool(self._provider.force_flush(int(timeout_s * 1000)))

    def shutdown(self) -> None:
        self._provider.shutdown()
