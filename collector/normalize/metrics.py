"""OTLP metric requests → `otel_metrics_sum`, `_gauge` and `_histogram` rows.

Exponential histograms and summaries have no table yet: their points are counted as skipped
(no GenAI instrumentation sends them; the GenAI client metrics are explicit-bucket histograms)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Exemplar, Metric, NumberDataPoint

from assay.collector.normalize.otlp import attributes_and_text, text_attributes
from assay.collector.schema import (
    MetricGaugeRow,
    MetricHistogramRow,
    MetricPoint,
    MetricSumRow,
)
from assay.instrumentation import semconv as sc


@dataclass(slots=True)
class MetricBatch:
    sums: list[MetricSumRow] = field(default_factory=list)
    gauges: list[MetricGaugeRow] = field(default_factory=list)
    histograms: list[MetricHistogramRow] = field(default_factory=list)
    skipped_points: int = 0

    def tables(self) -> list[list[Any]]:
        return [rows for rows in (self.sums, self.gauges, self.histograms) if rows]


def _number(point: NumberDataPoint | Exemplar) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def _exemplars(row: MetricPoint, exemplars: Iterable[Exemplar]) -> None:
    for exemplar in exemplars:
        row.Exemplars_FilteredAttributes.append(text_attributes(exemplar.filtered_attributes))
        row.Exemplars_TimeUnix.append(exemplar.time_unix_nano)
        row.Exemplars_Value.append(_number(exemplar))
        row.Exemplars_SpanId.append(exemplar.span_id.hex())
        row.Exemplars_TraceId.append(exemplar.trace_id.hex())


def normalize_metrics(
    request: ExportMetricsServiceRequest, batch: MetricBatch | None = None
) -> MetricBatch:
    """Append the rows of one request to `batch` (a new one if None) and return it."""
    batch = batch if batch is not None else MetricBatch()
    for resource_metrics in request.resource_metrics:
        resource, resource_text = attributes_and_text(resource_metrics.resource.attributes)
        common_resource = {
            "ResourceAttributes": resource_text,
            "ResourceSchemaUrl": resource_metrics.schema_url,
            "ServiceName": str(resource.get(sc.SERVICE_NAME, "unknown_service")),
        }
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            common_scope = {
                **common_resource,
                "ScopeName": scope.name,
                "ScopeVersion": scope.version,
                "ScopeAttributes": text_attributes(scope.attributes),
                "ScopeDroppedAttrCount": scope.dropped_attributes_count,
                "ScopeSchemaUrl": scope_metrics.schema_url,
            }
            for metric in scope_metrics.metrics:
                _metric_rows(metric, common_scope, batch)
    return batch


def _metric_rows(metric: Metric, common_scope: dict[str, Any], batch: MetricBatch) -> None:
    common = {
        **common_scope,
        "MetricName": metric.name,
        "MetricDescription": metric.description,
        "MetricUnit": metric.unit,
    }
    kind = metric.WhichOneof("data")
    if kind == "sum":
        for point in metric.sum.data_points:
            row = MetricSumRow(
                **common,
                **_times(point),
                Value=_number(point),
                Flags=point.flags,
                AggregationTemporality=int(metric.sum.aggregation_temporality),
                IsMonotonic=metric.sum.is_monotonic,
            )
            _exemplars(row, point.exemplars)
            batch.sums.append(row)
    elif kind == "gauge":
        for point in metric.gauge.data_points:
            gauge = MetricGaugeRow(
                **common, **_times(point), Value=_number(point), Flags=point.flags
            )
            _exemplars(gauge, point.exemplars)
            batch.gauges.append(gauge)
    elif kind == "histogram":
        for hpoint in metric.histogram.data_points:
            histogram = MetricHistogramRow(
                **common,
                **_times(hpoint),
                Count=hpoint.count,
                Sum=hpoint.sum,
                BucketCounts=list(hpoint.bucket_counts),
                ExplicitBounds=list(hpoint.explicit_bounds),
                Flags=hpoint.flags,
                Min=hpoint.min,
                Max=hpoint.max,
                AggregationTemporality=int(metric.histogram.aggregation_temporality),
            )
            _exemplars(histogram, hpoint.exemplars)
            batch.histograms.append(histogram)
    elif kind == "exponential_histogram":
        batch.skipped_points += len(metric.exponential_histogram.data_points)
    elif kind == "summary":
        batch.skipped_points += len(metric.summary.data_points)


def _times(point: Any) -> dict[str, Any]:
    return {
        "Attributes": text_attributes(point.attributes),
        "StartTimeUnix": point.start_time_unix_nano,
        "TimeUnix": point.time_unix_nano,
    }
