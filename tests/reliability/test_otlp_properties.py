"""Property: whatever values an OTLP request carries, over gRPC, HTTP protobuf or HTTP JSON, it
gets an answer, what is sent after it is stored, and every item acknowledged (not rejected in
the partial-success answer) is stored or in the dead-letter folder: nothing is lost.

Hypothesis draws every numeric field at its extremes (0, the type's limits, NaN and ±Infinity
for doubles, which OTLP/JSON spells as strings), every kind of attribute value, ids of any
length, and strings anywhere in Unicode, plus invalid UTF-8 where only protobuf can carry it (its
bytes replaced with U+FFFD, the request taken).
A fixed budget: derandomized, a bounded number of examples."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from assay.instrumentation import semconv as sc
from tests.conftest import RunningCollector
from tests.reliability.otlp_export import REJECTED, TRANSPORTS, export

pytestmark = pytest.mark.integration

U64 = 2**64 - 1
I64 = (-(2**63), 2**63 - 1)
INVALID_UTF8 = b"\xff\xfe\xc3("  # stands in for a same-length marker in the protobuf bytes
MARKER = "\x7fBADUTF8\x7f"[: len(INVALID_UTF8)]

NOW = time.time_ns()
DAY = 86_400 * 10**9
# Times the tables keep (inside the default retention) beside every extreme: an item with a time
# outside the retention or after 2100 is refused, the rest are stored.
RECENT = (NOW - 30 * DAY, NOW + DAY)
times = st.one_of(st.integers(*RECENT), st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]))
uint64 = st.one_of(st.sampled_from([0, 1, 2**32, 2**63 - 1, 2**63, U64]), st.integers(0, U64))
int64 = st.one_of(st.sampled_from([*I64, -1, 0, 1]), st.integers(*I64))
int32 = st.one_of(
    st.sampled_from([-(2**31), -1, 0, 255, 256, 2**31 - 1]), st.integers(-(2**31), 2**31 - 1)
)
uint32 = st.one_of(st.sampled_from([0, 2**32 - 1]), st.integers(0, 2**32 - 1))
double = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
text = st.one_of(st.text(max_size=40), st.text(alphabet="\x00\u2028\U0010ffff", max_size=5))
# One field of each request may carry invalid UTF-8 (one request in four).
corruptible = st.one_of(text, text, text, st.just(MARKER))
ids = st.one_of(st.sampled_from([b"", b"\x00" * 16, b"\xff" * 16]), st.binary(max_size=20))
keys = st.one_of(
    st.sampled_from(
        [
            sc.USAGE_INPUT_TOKENS,
            sc.USAGE_OUTPUT_TOKENS,
            sc.REQUEST_MODEL,
            sc.OPERATION_NAME,
            sc.REQUEST_TEMPERATURE,
            sc.INPUT_MESSAGES,
            "llm.token_count.prompt",
            "gen_ai.usage.cost",
        ]
    ),
    text,
)


def _any_value(depth: int = 0) -> st.SearchStrategy[AnyValue]:
    scalars = st.one_of(
        text.map(lambda v: AnyValue(string_value=v)),
        int64.map(lambda v: AnyValue(int_value=v)),
        double.map(lambda v: AnyValue(double_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.binary(max_size=20).map(lambda v: AnyValue(bytes_value=v)),
    )
    if depth >= 1:
        return scalars
    inner = _any_value(depth + 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3).map(_array),
        st.lists(st.tuples(text, inner), max_size=3).map(_kvlist),
    )


def _array(values: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(values)
    return value


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    value = AnyValue()
    value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return value


attributes = st.lists(
    st.builds(lambda k, v: KeyValue(key=k, value=v), keys, _any_value()), max_size=5
)


@st.composite
def traces(draw: Any, service: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    resource.resource.attributes.extend(draw(attributes))
    scope = resource.scope_spans.add()
    scope.scope.name = draw(corruptible)
    for i in range(draw(st.integers(1, 3))):
        span = scope.spans.add(
            trace_id=draw(ids),
            span_id=draw(ids),
            parent_span_id=draw(ids),
            # Unique within the request: otel_traces merges rows of one name, time and ids.
            name=f"{draw(text)}#{i}",
            kind=draw(int32),  # an open enum
            start_time_unix_nano=draw(times),
            end_time_unix_nano=draw(times),
            dropped_attributes_count=draw(uint32),
            flags=draw(uint32),
        )
        span.attributes.extend(draw(attributes))
        span.status.code = draw(int32)
        span.status.message = draw(text)
        for _ in range(draw(st.integers(0, 2))):
            event = span.events.add(time_unix_nano=draw(times), name=draw(text))
            event.attributes.extend(draw(attributes))
        for _ in range(draw(st.integers(0, 1))):
            link = span.links.add(trace_id=draw(ids), span_id=draw(ids), flags=draw(uint32))
            link.attributes.extend(draw(attributes))
    return request


@st.composite
def logs(draw: Any, service: str) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource = request.resource_logs.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    scope = resource.scope_logs.add()
    for _ in range(draw(st.integers(1, 3))):
        record = scope.log_records.add(
            time_unix_nano=draw(times),
            observed_time_unix_nano=draw(times),
            severity_number=draw(int32),
            severity_text=draw(corruptible),
            trace_id=draw(ids),
            span_id=draw(ids),
            flags=draw(uint32),
            event_name=draw(text),
        )
        record.body.CopyFrom(draw(_any_value()))
        record.attributes.extend(draw(attributes))
    return request


@st.composite
def metrics(draw: Any, service: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    scope = resource.scope_metrics.add()
    for kind in draw(
        st.lists(st.sampled_from(["sum", "gauge", "histogram"]), min_size=1, max_size=3)
    ):
        metric = scope.metrics.add(name=draw(text), unit=draw(corruptible))
        if kind == "histogram":
            metric.histogram.aggregation_temporality = draw(int32)
            bounds = draw(st.lists(double, max_size=3))
            point = metric.histogram.data_points.add(
                time_unix_nano=draw(times),
                start_time_unix_nano=draw(times),
                count=draw(uint64),
                sum=draw(double),
                min=draw(double),
                max=draw(double),
                explicit_bounds=bounds,
                bucket_counts=draw(st.lists(uint64, max_size=4)),
            )
        else:
            points = metric.sum.data_points if kind == "sum" else metric.gauge.data_points
            point = points.add(time_unix_nano=draw(times), start_time_unix_nano=draw(times))
            if draw(st.booleans()):
                point.as_int = draw(int64)
            else:
                point.as_double = draw(double)
        point.attributes.extend(draw(attributes))
    return request


ITEMS = {  # how many items of a request the collector counts (and rejects)
    "traces": lambda r: sum(len(s.spans) for rs in r.resource_spans for s in rs.scope_spans),
    "logs": lambda r: sum(len(s.log_records) for rl in r.resource_logs for s in rl.scope_logs),
    "metrics": lambda r: sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for rm in r.resource_metrics
        for s in rm.scope_metrics
        for m in s.metrics
    ),
}
STORED = {  # rows stored for a service, by signal
    "traces": "SELECT count() AS n FROM otel_traces WHERE ServiceName = {s:String}",
    "logs": "SELECT count() AS n FROM otel_logs WHERE ServiceName = {s:String}",
    "metrics": (
        "SELECT (SELECT count() FROM otel_metrics_sum WHERE ServiceName = {s:String})"
        " + (SELECT count() FROM otel_metrics_gauge WHERE ServiceName = {s:String})"
        " + (SELECT count() FROM otel_metrics_histogram WHERE ServiceName = {s:String}) AS n"
    ),
}
BUILD = {"traces": traces, "logs": logs, "metrics": metrics}


def _dead_lettered(folder: Path, service: str) -> int:
    if not folder.exists():
        return 0
    found = 0
    for path in folder.glob("*.json"):
        entry = json.loads(path.read_bytes())
        column = "ServiceName" if "ServiceName" in entry["columns"] else "service_name"
        index = entry["columns"].index(column)
        found += sum(1 for row in entry["rows"] if row[index] == service)
    return found


def test_any_values_are_answered_and_nothing_acknowledged_is_lost(
    collector: RunningCollector,
) -> None:
    # service, signal, items acknowledged (not rejected): each must be stored
    sent: list[tuple[str, str, int]] = []
    run = f"prop-{time.time_ns()}"

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data(), st.sampled_from(sorted(BUILD)), st.sampled_from(TRANSPORTS))
    def one_request(data: Any, signal: str, how: str) -> None:
        service = f"{run}-{len(sent)}"
        request = data.draw(BUILD[signal](service))
        body = request.SerializeToString()
        if MARKER.encode() in body:
            if how == "json":  # JSON carries only valid Unicode: send the marker as it is
                pass
            else:
                body = body.replace(MARKER.encode(), INVALID_UTF8)
        accepted, response, why = export(collector.grpc_port, collector.http_url, signal, body, how)
        assert accepted, why  # invalid UTF-8 included: mended, never the whole request refused
        rejected = getattr(response.partial_success, REJECTED[signal])  # type: ignore[union-attr]
        kept = ITEMS[signal](request) - rejected
        assert kept >= 0, (kept, response)
        sent.append((service, signal, kept))

    one_request()
    assert sent, "every request was refused: the strategies are too wild"

    # A request after all of them is stored, and then everything acknowledged is.
    after = f"{run}-after"
    accepted, _, why = export(
        collector.grpc_port,
        collector.http_url,
        "traces",
        traces_request(after),
        "grpc",
    )
    assert accepted, why
    collector.wait_for_rows(f"SELECT 1 FROM otel_traces WHERE ServiceName = '{after}'", 1, 60)
    folder = collector.storage / "deadletter"
    lost = []
    deadline = time.monotonic() + 30
    for service, signal, kept in sent:
        while True:
            (row,) = collector.query(STORED[signal].replace("{s:String}", f"'{service}'"))
            found = int(row["n"]) + _dead_lettered(folder, service)
            if found >= kept or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if found != kept:
            lost.append((service, signal, kept, found))
    print(f"\n{len(sent)} requests acknowledged, {sum(k for *_, k in sent)} items kept")
    assert not lost, lost
    health = collector.query("SELECT 1 AS one")  # the collector still answers queries
    assert health == [{"one": 1}]


def traces_request(service: str) -> bytes:
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    resource.scope_spans.add().spans.add(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="after",
        start_time_unix_nano=time.time_ns(),
        end_time_unix_nano=time.time_ns() + 1,
    )
    return request.SerializeToString()
