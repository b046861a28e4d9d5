"""Scores as OpenTelemetry events: `gen_ai.evaluation.result` log records, the GenAI
conventions' form, so that scores move between tools (another backend, another Assay).

Each record is parented to the span it judges (its trace and span ids), carries
`gen_ai.evaluation.name`, `.score.value`, `.score.label`, `.explanation` (and `error.type`
for an evaluation that failed), plus `assay.score.*` attributes with what the conventions do
not say: the source, the verdict, the direction, the author. Records go through an OTLP log
exporter of their own (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`,
with the spans' protocol, gRPC by default; else the endpoint given, over HTTP), batched,
flushed at `flush()`.
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


def _exporter(endpoint: str | None, headers: dict[str, str] | None) -> Any:
    """Records go where the environment sends OTLP, by the rules the spans follow
    (`instrument()`): gRPC unless `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL` or
    `OTEL_EXPORTER_OTLP_PROTOCOL` says http/protobuf. Over HTTP to a gRPC port the records were
    lost. With no endpoint in the environment, to `endpoint` (the collector's HTTP address)."""
    from_environment = os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    )
    if from_environment and not protocol.strip().lower().startswith("http"):
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GRPCLogExporter,
        )

        return GRPCLogExporter(headers=headers)  # reads the endpoint from the environment
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(endpoint=_logs_url(endpoint), headers=headers)


class _Outcome:
    """Wraps the exporter and remembers whether an export failed since the last look: the
    batch processor's flush says only that it ended, not that the records arrived."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.failed = False

    def export(self, batch: Any) -> Any:
        result = self.exporter.export(batch)
        # By name: the SDK renamed the enum (LogExportResult, LogRecordExportResult).
        if getattr(result, "name", "") != "SUCCESS":
            self.failed = True
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def took_all(self) -> bool:
        failed, self.failed = self.failed, False
        return not failed


class EvaluationEvents:
    """Sends evaluation results as OTLP log records to `endpoint` (over HTTP: a base URL such
    as the collector's http://localhost:4318) unless the environment names one."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
    ) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create(
            {sc.SERVICE_NAME: service_name} if service_name else {}
        )  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create
        self._provider = LoggerProvider(resource=resource)
        self._exporter = _Outcome(_exporter(endpoint, dict(headers) if headers else None))
        # _Outcome has an exporter's three methods; the SDK's base class would have to be
        # imported with this module, which importing the package must not pay for.
        processor = BatchLogRecordProcessor(self._exporter)  # type: ignore[arg-type]
        self._provider.add_log_record_processor(processor)
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
        """Whether every record emitted so far reached the endpoint within `timeout_s`."""
        flushed = bool(self._provider.force_flush(int(timeout_s * 1000)))
        return self._exporter.took_all() and flushed

    def shutdown(self) -> None:
        self._provider.shutdown()
