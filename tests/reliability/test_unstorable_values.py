"""Values the store cannot hold never stop ingestion: each is refused (with the OTLP partial-success
answer saying why) or clamped at the receiver, and what is sent afterwards is stored at once.

Before: each of these was acknowledged, then the writer retried its spool segment forever while
everything sent after it waited, and /api/health said "ok"; an infinite token count dropped the
rest of its request after a 200."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from assay.collector.receivers.validation import MAX_TIME_NS
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import (
    make_log_record,
    make_log_request,
    make_request,
    make_span,
)
from tests.conftest import RunningCollector
from tests.reliability.otlp_export import REJECTED, export

DAY = 86_400 * 10**9
PAST_2262 = 2**63 + 5  # beyond DateTime64(9) altogether
PAST_2100 = MAX_TIME_NS + DAY  # storable as DateTime64, but past what TTLs and partitions hold


def _export(collector: RunningCollector, signal: str, request: Message, how: str) -> Message:
    """Send over OTLP/HTTP (protobuf or JSON) or gRPC; the decoded export response."""
    accepted, response, why = export(
        collector.grpc_port, collector.http_url, signal, request.SerializeToString(), how
    )
    assert accepted and response is not None, why
    return response


def _health(collector: RunningCollector) -> dict[str, Any]:
    return dict(httpx.get(f"{collector.http_url}/api/health", timeout=10).json())


def _metrics(service: str, time_ns: int) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    metric = resource.scope_metrics.add().metrics.add(name="queue.depth")
    metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=1.0)
    metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=2.0)
    return request


def _late_event(service: str) -> Any:
    span = make_span(attrs={sc.REQUEST_MODEL: "m"}, events=(("gen_ai.choice", {}),))
    span.events[0].time_unix_nano = 2**64 - 1
    return make_request(service, span)


def _loud_log(service: str) -> Any:
    record = make_log_record("app.log", body="hello")
    record.severity_number = 300  # type: ignore[assignment]  # an open enum: any int32 arrives
    return make_log_request(service, record, make_log_record("app.log", body="after"))


def _at(record: Any, time_ns: int) -> Any:
    record.time_unix_nano = time_ns
    return record


def _with_ids(record: Any) -> Any:
    record.trace_id = b"\x01\x02\x03"
    record.span_id = bytes(range(1, 9))
    return record


# signal, request for a service, rejected count, what the message says, rows then stored
CASES: dict[str, tuple[str, Callable[[str], Message], int, str, str]] = {
    "span after 2262": (
        "traces",
        lambda s: make_request(s, make_span(start_ns=PAST_2262), make_span(name="kept")),
        1,
        "span start time after 2100-01-01",
        "SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = '{s}' HAVING n = 1",
    ),
    "span after 2100": (
        "traces",
        lambda s: make_request(s, make_span(start_ns=PAST_2100), make_span(name="kept")),
        1,
        "span start time after 2100-01-01",
        "SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = '{s}' HAVING n = 1",
    ),
    "event after 2262": (
        "traces",
        _late_event,
        0,
        "span event time after 2100-01-01",
        "SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{s}' "
        f"AND Events.Timestamp[1] = fromUnixTimestamp64Nano(toInt64({MAX_TIME_NS}))",
    ),
    "metric point after 2262": (
        "metrics",
        lambda s: _metrics(s, 2**64 - 1),
        1,
        "metric point time after 2100-01-01",
        "SELECT count() AS n FROM assay.otel_metrics_gauge WHERE ServiceName = '{s}' HAVING n = 1",
    ),
    "log severity over 255": (
        "logs",
        _loud_log,
        0,
        "log severity number 300 is outside 0-255",
        "SELECT count() AS n FROM assay.otel_logs WHERE ServiceName = '{s}' "
        "AND SeverityNumber = 0 HAVING n = 2",
    ),
    "all-zero trace id": (
        "traces",
        lambda s: make_request(s, make_span(trace_id=bytes(16)), make_span(name="kept")),
        1,
        "span trace id not 16 bytes or all zero",
        "SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = '{s}' "
        "AND SpanName = 'kept' HAVING n = 1",
    ),
    "span id of 4 bytes": (
        "traces",
        lambda s: make_request(s, make_span(span_id=b"\x01\x02\x03\x04"), make_span(name="kept")),
        1,
        "span id not 8 bytes or all zero",
        "SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = '{s}' "
        "AND SpanName = 'kept' HAVING n = 1",
    ),
    "all-zero parent span id": (
        "traces",
        lambda s: make_request(s, make_span(parent_span_id=bytes(8))),
        0,
        "parent span id not 8 bytes or all zero: the span is a root",
        "SELECT 1 FROM assay.trace_summary WHERE trace_id IN (SELECT TraceId FROM "
        "assay.otel_traces WHERE ServiceName = '{s}' AND ParentSpanId = '') AND has_root",
    ),
    "log record with a 3-byte trace id": (
        "logs",
        lambda s: make_log_request(s, _with_ids(make_log_record("app.log", body="hi"))),
        0,
        "log record trace_id of a wrong length or all zero: cleared",
        "SELECT 1 FROM assay.otel_logs WHERE ServiceName = '{s}' AND TraceId = '' "
        "AND SpanId = '0102030405060708'",
    ),
    "token count over 2^64": (
        "traces",
        lambda s: make_request(
            s, make_span(attrs={sc.REQUEST_MODEL: "m", sc.USAGE_INPUT_TOKENS: 1e30})
        ),
        0,
        "",
        "SELECT 1 FROM assay.llm_calls WHERE service_name = '{s}' AND input_tokens IS NULL",
    ),
    "token count of 2^63 - 1": (  # a broken instrumentation's: unknown, not a trillion dollars
        "traces",
        lambda s: make_request(
            s,
            make_span(
                attrs={
                    sc.REQUEST_MODEL: "gpt-4o-mini",
                    sc.PROVIDER_NAME: "openai",
                    sc.USAGE_INPUT_TOKENS: 2**63 - 1,
                    sc.USAGE_OUTPUT_TOKENS: 10,
                }
            ),
        ),
        0,
        "",
        "SELECT 1 FROM assay.llm_calls AS c JOIN assay.otel_traces AS t ON t.SpanId = c.span_id "
        "WHERE c.service_name = '{s}' AND c.input_tokens IS NULL AND c.cost_usd < 0.01 "
        f"AND t.SpanAttributes['{sc.USAGE_INPUT_TOKENS}'] = '{2**63 - 1}'",
    ),
    "infinite token count": (
        "traces",
        lambda s: make_request(
            s,
            make_span(attrs={sc.REQUEST_MODEL: "m", sc.USAGE_OUTPUT_TOKENS: float("inf")}),
            make_span(name="after", attrs={sc.REQUEST_MODEL: "m", sc.USAGE_OUTPUT_TOKENS: 7}),
        ),
        0,
        "",
        "SELECT count() AS n, countIf(output_tokens = 7) AS seven FROM assay.llm_calls "
        "WHERE service_name = '{s}' HAVING n = 2 AND seven = 1",
    ),
    # The default retention keeps 90 days: the table's TTL would drop these as they are inserted
    # (and the rollups their views feed would count them), acknowledged and lost.
    "span older than the retention": (
        "traces",
        lambda s: make_request(
            s,
            make_span(start_ns=time.time_ns() - 91 * DAY, attrs={sc.REQUEST_MODEL: "m"}),
            make_span(name="kept", start_ns=time.time_ns() - 89 * DAY),
        ),
        1,
        "span start time before ",
        "SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = '{s}' "
        "AND SpanName = 'kept' HAVING n = 1",
    ),
    "log record of 1970": (
        "logs",
        lambda s: make_log_request(
            s,
            _at(make_log_record("app.log", body="old"), 1),
            make_log_record("app.log", body="new"),
        ),
        1,
        "log record time before ",
        "SELECT count() AS n FROM assay.otel_logs WHERE ServiceName = '{s}' HAVING n = 1",
    ),
    "metric point at time 0": (
        "metrics",
        lambda s: _metrics(s, 0),
        1,
        "metric point time before ",
        "SELECT count() AS n FROM assay.otel_metrics_gauge WHERE ServiceName = '{s}' HAVING n = 1",
    ),
    "a backfill over 150 days": (
        "traces",
        lambda s: make_request(
            # Past and future days alike: all inside the default 90-day retention's reach.
            s,
            *(
                make_span(start_ns=time.time_ns() + (day - 60) * DAY, attrs={sc.REQUEST_MODEL: "m"})
                for day in range(150)
            ),
        ),
        0,
        "",
        "SELECT count() AS n, uniqExact(toDate(Timestamp)) AS days FROM assay.otel_traces "
        "WHERE ServiceName = '{s}' HAVING n = 150 AND days = 150",
    ),
}


@pytest.mark.parametrize("how", ["protobuf", "json", "grpc"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_store_cannot_hold_never_stops_ingestion(
    collector: RunningCollector, case: str, how: str
) -> None:
    signal, build, rejected, reason, stored_sql = CASES[case]
    failures_before = _health(collector)["pipeline"]["write_failures"]
    service = f"unstorable-{uuid.uuid4().hex[:8]}"
    response = _export(collector, signal, build(service), how)
    if reason:
        partial = response.partial_success  # type: ignore[attr-defined]
        assert getattr(partial, REJECTED[signal]) == rejected, partial
        assert reason in partial.error_message, partial
    else:
        assert not response.HasField("partial_success"), response  # type: ignore[attr-defined]

    # Everything sent afterwards is stored, and so is what was kept of the request.
    after = f"after-{service}"
    _export(collector, "traces", make_request(after, make_span()), how)
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{after}'", 1, timeout=30
    )
    collector.wait_for_rows(stored_sql.format(s=service), 1, timeout=30)
    health = _health(collector)
    assert health["status"] == "ok", health
    assert health["pipeline"]["write_failures"] == failures_before, health["pipeline"]
