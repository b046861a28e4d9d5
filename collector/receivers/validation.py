"""What the store cannot hold, settled at the receiver: records refused, values clamped, and the
OTLP partial-success answer that tells the client which and why.

Per field (the README's "What the collector refuses" lists the same):

- A span's start time, a log record's time, a metric point's time after `MAX_TIME_NS`
  (2100-01-01): the record is **rejected**. Its time places it in a partition and gives it its
  expiry; ClickHouse's `DateTime`, which the tables' sort, partition and TTL keys use, ends in
  2106 and wraps round to 1970 past it, so the record would land on a wrong day and be dropped
  by the next merge. 2100 leaves room for a retention period to be added.
- The same time older than its table keeps (`oldest`, from the tables' TTLs:
  `retention.kept_seconds`): the record is **rejected**. The table's TTL would drop it as it is
  inserted; acknowledged, it would be lost without a word (and counted in the rollups the
  insert's views feed). A log record's table is `otel_logs`, a metric point's that of its kind
  (exponential histograms and summaries have none: they are not stored, whatever their time).
  A span's row is in `otel_traces`, and an LLM call's also in `llm_calls`, whose retention may
  be longer or shorter: a span that is no LLM call is refused when older than `otel_traces`
  keeps, an LLM call only when older than both keep; kept by one of its two tables alone, it is
  taken with a **warning** (a partial success of 0 rejected) naming the row that expires. Only a
  span older than one of its tables keeps is asked whether it is an LLM call (the receivers'
  `is_llm_call_span`, normalize's own test): a recent span costs one comparison.
- An event's, an exemplar's or a metric point's start time after `MAX_TIME_NS`: **clamped** to
  it (the record keeps its place in time; only the secondary time is wrong).
- A log severity number outside 0–255 (`SeverityNumber` is UInt8): **clamped** to 0,
  "unspecified"; the severity text is kept.
- A span whose trace id is not 16 bytes or is all zero, or whose span id is not 8 bytes or is
  all zero: **rejected** (OTLP calls such ids invalid; an all-zero trace id would gather every
  such span of every client into one trace). A parent span id that is not 8 bytes or is all
  zero: **cleared**, the span is a root. A log record's trace or span id of a wrong length or
  all zero: **cleared** (a log record need not belong to a span).

Token counts, costs and times to first token are attribute values, read by the dialects in the
writer: a value that cannot be true (negative, non-finite, not whole, over `cost.MAX_COUNT`)
becomes NULL there (`normalize/cost.py`) and stays readable in the span's attributes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from assay.collector.receivers.content import is_llm_call_span
from assay.collector.schema import (
    LlmCallRow,
    LogRow,
    MetricGaugeRow,
    MetricHistogramRow,
    MetricSumRow,
    TraceRow,
)

SPAN_TABLE, CALL_TABLE = TraceRow.table, LlmCallRow.table
MAX_TIME = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
MAX_TIME_NS = int(MAX_TIME.timestamp()) * 1_000_000_000
MAX_SEVERITY = 255
# Reasons kept per request: a request of 10,000 bad spans gets one line per kind of problem.
_MAX_REASONS = 5


@dataclass
class Admission:
    """What the check of one request found: records rejected and values clamped, with why."""

    rejected: int = 0
    clamped: int = 0
    warned: int = 0  # records taken as sent, of which the client should know something
    _reasons: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the request was changed (records removed, values clamped)."""
        return bool(self.rejected or self.clamped)

    @property
    def to_tell(self) -> bool:
        """Whether the answer says something: a change, or a warning."""
        return bool(self.rejected or self.clamped or self.warned)

    def warn(self, reason: str) -> None:
        self.warned += 1
        self._count(reason)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self._count(reason)

    def clamp(self, reason: str, count: int = 1) -> None:
        self.clamped += count
        self._count(reason, count)

    def _count(self, reason: str, count: int = 1) -> None:
        if reason in self._reasons or len(self._reasons) < _MAX_REASONS:
            self._reasons[reason] = self._reasons.get(reason, 0) + count

    @property
    def message(self) -> str:
        """One line for the client: each kind of problem once, with how often it occurred."""
        return "; ".join(
            f"{reason} (x{count})" if count > 1 else reason
            for reason, count in self._reasons.items()
        )


_LATEST = f"after {MAX_TIME:%Y-%m-%d}, the latest time the store holds"


def _late(ns: int) -> bool:
    return ns > MAX_TIME_NS


def _valid_id(value: bytes, size: int) -> bool:
    """OTLP: an id of any other length, or all zero, is invalid."""
    return len(value) == size and value.count(0) != size


def _keep(items: Any, keep: Callable[[Any], bool]) -> None:
    """Remove from a repeated message field the items `keep` refuses (in place)."""
    for index in range(len(items) - 1, -1, -1):
        if not keep(items[index]):
            del items[index]


def _utc(ns: int) -> str:
    return f"{dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc):%Y-%m-%d %H:%M} UTC"


def _too_old(what: str, oldest_ns: int) -> str:
    return f"{what} before {_utc(oldest_ns)}, older than the store keeps (its retention)"


def _clamp_times(records: Iterable[Any], name: str, what: str, admission: Admission) -> None:
    for record in records:
        if _late(getattr(record, name)):
            setattr(record, name, MAX_TIME_NS)
            admission.clamp(f"{what} {_LATEST}: set to {MAX_TIME:%Y-%m-%d}")


_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def _old_span_kept(
    span: Any, start: int, oldest_span: int, oldest_call: int, admission: Admission
) -> bool:
    """Whether to keep a span older than one of its tables keeps (0: that table keeps any):
    rare, a backfill or a clock far behind, so only such a span is asked whether it is an LLM
    call. The client is told which of an LLM call's two rows expires as it is inserted."""
    if not is_llm_call_span(span):
        if start < oldest_span:
            admission.reject(_too_old("span start time", oldest_span))
            return False
        return True
    in_traces, in_calls = start >= oldest_span, start >= oldest_call
    if not (in_traces or in_calls):
        admission.reject(_too_old("LLM span start time", min(oldest_span, oldest_call)))
        return False
    if not in_traces:
        admission.warn(
            f"LLM span start time before {_utc(oldest_span)}, older than the store keeps spans "
            "(retention traces): kept as an LLM call (llm_calls) without its span row "
            "(otel_traces, the trace view)"
        )
    elif not in_calls:
        admission.warn(
            f"LLM span start time before {_utc(oldest_call)}, older than the store keeps LLM "
            "calls (retention llm_calls): kept as a span (otel_traces) without its call row "
            "(llm_calls, the dashboards and the review UI)"
        )
    return True


def check_traces(
    request: ExportTraceServiceRequest, admission: Admission, oldest: Mapping[str, int]
) -> None:
    oldest_span, oldest_call = oldest.get(SPAN_TABLE, 0), oldest.get(CALL_TABLE, 0)
    recent = max(oldest_span, oldest_call)  # a span from then on is kept, LLM call or not

    def keep(span: Any) -> bool:
        # `_late` and `_valid_id` written out: every span of every request comes here, and a
        # call per field was most of validating one.
        start = span.start_time_unix_nano
        if start > MAX_TIME_NS:
            admission.reject(f"span start time {_LATEST}")
            return False
        if start < recent and not _old_span_kept(span, start, oldest_span, oldest_call, admission):
            return False
        trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
        if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
            admission.reject("span trace id not 16 bytes or all zero (invalid in OTLP)")
            return False
        if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
            admission.reject("span id not 8 bytes or all zero (invalid in OTLP)")
            return False
        if parent and (len(parent) != 8 or parent == _ZERO_SPAN_ID):
            span.parent_span_id = b""
            admission.clamp("parent span id not 8 bytes or all zero: the span is a root")
        if span.events:
            _clamp_times(span.events, "time_unix_nano", "span event time", admission)
        return True

    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            _keep(scope_spans.spans, keep)


def check_logs(
    request: ExportLogsServiceRequest, admission: Admission, oldest: Mapping[str, int]
) -> None:
    oldest_ns = oldest.get(LogRow.table, 0)

    def keep(record: Any) -> bool:
        # The stored time is the record's own, else when it was observed (otel_logs.Timestamp).
        stored = record.time_unix_nano or record.observed_time_unix_nano
        if _late(stored):
            admission.reject(f"log record time {_LATEST}")
            return False
        if stored < oldest_ns:
            admission.reject(_too_old("log record time", oldest_ns))
            return False
        if not 0 <= record.severity_number <= MAX_SEVERITY:
            admission.clamp(
                f"log severity number {record.severity_number} is outside 0-{MAX_SEVERITY}: "
                "stored as 0 (unspecified)"
            )
            record.severity_number = 0
        for name, size in (("trace_id", 16), ("span_id", 8)):
            value = getattr(record, name)
            if value and not _valid_id(value, size):
                setattr(record, name, b"")
                admission.clamp(f"log record {name} of a wrong length or all zero: cleared")
        return True

    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            _keep(scope_logs.log_records, keep)


_POINT_KINDS = ("sum", "gauge", "histogram", "exponential_histogram", "summary")
# The table of each kind of point (normalize/metrics.py); the other kinds are not stored.
_POINT_TABLES = {
    "sum": MetricSumRow.table,
    "gauge": MetricGaugeRow.table,
    "histogram": MetricHistogramRow.table,
}


def check_metrics(
    request: ExportMetricsServiceRequest, admission: Admission, oldest: Mapping[str, int]
) -> None:
    oldest_ns = 0  # of the kind of point being checked

    def keep(point: Any) -> bool:
        if _late(point.time_unix_nano):
            admission.reject(f"metric point time {_LATEST}")
            return False
        if point.time_unix_nano < oldest_ns:
            admission.reject(_too_old("metric point time", oldest_ns))
            return False
        _clamp_times((point,), "start_time_unix_nano", "metric point start time", admission)
        if hasattr(point, "exemplars"):  # summaries have none
            _clamp_times(point.exemplars, "time_unix_nano", "exemplar time", admission)
        return True

    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind in _POINT_KINDS:
                    table = _POINT_TABLES.get(kind)
                    oldest_ns = oldest.get(table, 0) if table is not None else 0
                    _keep(getattr(metric, kind).data_points, keep)


_CHECKS: dict[type[Message], Callable[[Any, Admission, Mapping[str, int]], None]] = {
    ExportTraceServiceRequest: check_traces,
    ExportLogsServiceRequest: check_logs,
    ExportMetricsServiceRequest: check_metrics,
}


def check_request(request: Message, oldest: Mapping[str, int] | None = None) -> Admission:
    """Reject (remove) and clamp, in place, what the store cannot hold or would not keep (a
    record older than `oldest`, Unix ns by table, gives its tables: a table not named keeps
    any); say what was done."""
    admission = Admission()
    _CHECKS[type(request)](request, admission, oldest or {})
    return admission


_PARTIAL: dict[str, tuple[type[Message], type[Message], str]] = {
    "traces": (ExportTraceServiceResponse, ExportTracePartialSuccess, "rejected_spans"),
    "logs": (ExportLogsServiceResponse, ExportLogsPartialSuccess, "rejected_log_records"),
    "metrics": (
        ExportMetricsServiceResponse,
        ExportMetricsPartialSuccess,
        "rejected_data_points",
    ),
}


def export_response(signal: str, admission: Admission | None = None) -> Message:
    """The export response: empty when all was taken as sent, else with the partial-success
    field (the rejected count, 0 when values were only clamped or records kept with a warning,
    and the reasons)."""
    response_type, partial_type, count_field = _PARTIAL[signal]
    if admission is None or not admission.to_tell:
        return response_type()
    partial = partial_type(error_message=admission.message, **{count_field: admission.rejected})
    return response_type(partial_success=partial)
