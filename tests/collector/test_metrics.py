"""OTLP metrics: the real SDK's exporters (HTTP and gRPC) and OTLP/JSON into otel_metrics_*."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from assay.collector.normalize.metrics import normalize_metrics
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import key_values
from tests.conftest import RunningCollector

TRACE_ID, SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def record_genai_metrics(exporter: MetricExporter, service: str) -> None:
    """What a metrics-only GenAI service sends: two histograms, a counter and a gauge."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({sc.SERVICE_NAME: service})
    )
    meter = provider.get_meter("tests.genai")
    tokens = meter.create_histogram(sc.METRIC_TOKEN_USAGE, unit="{token}")
    duration = meter.create_histogram(sc.METRIC_OPERATION_DURATION, unit="s")
    base = {sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-4o-mini"}
    tokens.record(20, {**base, sc.TOKEN_TYPE: "input"})
    tokens.record(67, {**base, sc.TOKEN_TYPE: "output"})
    tokens.record(33, {**base, sc.TOKEN_TYPE: "output"})
    duration.record(0.25, base)
    meter.create_counter("app.requests").add(3, {"route": "/ask"})
    meter.create_gauge("app.queue.depth").set(7)
    provider.shutdown()  # one collection and export; a flush before it would send them twice


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_sdks_metrics_land_in_the_otel_metrics_tables(
    transport: str, collector: RunningCollector
) -> None:
    service = f"metrics-{transport}-{uuid.uuid4().hex[:8]}"
    exporter: MetricExporter = (
        HttpMetricExporter(endpoint=f"{collector.http_url}/v1/metrics")
        if transport == "http"
        else GrpcMetricExporter(endpoint=collector.grpc_endpoint, insecure=True)
    )
    record_genai_metrics(exporter, service)

    rows = collector.wait_for_rows(
        "SELECT MetricName, MetricUnit, Attributes, Count, Sum, Min, Max, BucketCounts,"
        " ExplicitBounds, AggregationTemporality FROM assay.otel_metrics_histogram"
        f" WHERE ServiceName = '{service}' ORDER BY MetricName, Sum",
        3,
    )
    duration, input_tokens, output_tokens = rows
    assert duration["MetricName"] == sc.METRIC_OPERATION_DURATION and duration["MetricUnit"] == "s"
    assert (duration["Count"], duration["Sum"]) == (1, 0.25)
    assert input_tokens["Attributes"][sc.TOKEN_TYPE] == "input" and input_tokens["Sum"] == 20
    assert output_tokens["MetricName"] == sc.METRIC_TOKEN_USAGE
    assert (output_tokens["Count"], output_tokens["Sum"]) == (2, 100)
    assert (output_tokens["Min"], output_tokens["Max"]) == (33, 67)
    assert sum(output_tokens["BucketCounts"]) == 2
    assert len(output_tokens["BucketCounts"]) == len(output_tokens["ExplicitBounds"]) + 1
    assert output_tokens["AggregationTemporality"] == 2  # cumulative, the SDK's default

    (counter,) = collector.wait_for_rows(
        "SELECT Value, IsMonotonic, Attributes FROM assay.otel_metrics_sum"
        f" WHERE ServiceName = '{service}'",
        1,
    )
    assert counter["Value"] == 3 and counter["IsMonotonic"] is True
    assert counter["Attributes"] == {"route": "/ask"}
    (gauge,) = collector.wait_for_rows(
        f"SELECT Value FROM assay.otel_metrics_gauge WHERE ServiceName = '{service}'", 1
    )
    assert gauge["Value"] == 7


def otlp_json_sum(service: str) -> dict[str, object]:
    point = {
        "asInt": "5",
        "timeUnixNano": str(time.time_ns()),  # an old time would fall to the tables' TTL
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
        "exemplars": [{"asDouble": 1.5, "traceId": TRACE_ID, "spanId": SPAN_ID}],
    }
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "json.total",
                                "sum": {
                                    "dataPoints": [point],
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }


def test_otlp_json_metrics_with_hex_exemplar_ids(collector: RunningCollector) -> None:
    service = f"metrics-json-{uuid.uuid4().hex[:8]}"
    response = httpx.post(f"{collector.http_url}/v1/metrics", json=otlp_json_sum(service))
    assert response.status_code == 200, response.text
    (row,) = collector.wait_for_rows(
        "SELECT Value, AggregationTemporality, Exemplars.TraceId AS t, Exemplars.SpanId AS s,"
        f" Exemplars.Value AS v FROM assay.otel_metrics_sum WHERE ServiceName = '{service}'",
        1,
    )
    assert (row["Value"], row["AggregationTemporality"]) == (5, 1)
    assert (row["t"], row["s"], row["v"]) == ([TRACE_ID], [SPAN_ID], [1.5])


def test_malformed_metrics_are_refused_with_a_clear_error(collector: RunningCollector) -> None:
    response = httpx.post(
        f"{collector.http_url}/v1/metrics",
        content=b"\xff\x00 not protobuf",
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    bad_json = httpx.post(f"{collector.http_url}/v1/metrics", content=json.dumps([1]))
    assert bad_json.status_code in (400, 415)


def test_point_kinds_without_a_table_are_counted_as_skipped() -> None:
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    summary = metrics.add(name="latency.summary")
    summary.summary.data_points.add(count=3, sum=1.0)
    exponential = metrics.add(name="latency.exp")
    exponential.exponential_histogram.data_points.add(count=2)
    gauge = metrics.add(name="g")
    gauge.gauge.data_points.add(as_double=1.5).attributes.extend(key_values({"a": 1}))
    batch = normalize_metrics(request)
    assert batch.skipped_points == 2
    (row,) = batch.gauges
    assert (row.Value, row.Attributes, row.ServiceName) == (1.5, {"a": "1"}, "unknown_service")
