"""The stored facts in Python: a typed row for every table the collector writes (field order
and names are the columns; a test keeps each equal to its migration's DDL), who made a score,
and the named column lists the reads share."""

from __future__ import annotations

import datetime as dt
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from assay.instrumentation.semconv import FEEDBACK_NAME, ScoreSource

if TYPE_CHECKING:
    from assay.evaluators.base import Score

__all__ = ["FEEDBACK_NAME", "ScoreSource"]  # re-exported: the collector reads them from here


@dataclass(slots=True)
class TraceRow:
    table: ClassVar[str] = "otel_traces"

    Timestamp: int  # ns since the epoch
    TraceId: str
    SpanId: str
    ParentSpanId: str
    TraceState: str
    SpanName: str
    SpanKind: str
    ServiceName: str
    ResourceAttributes: dict[str, str]
    ScopeName: str
    ScopeVersion: str
    SpanAttributes: dict[str, str]
    Duration: int  # ns
    StatusCode: str
    StatusMessage: str
    # Nested columns are inserted as parallel arrays under their dotted names.
    Events_Timestamp: list[int] = field(default_factory=list)
    Events_Name: list[str] = field(default_factory=list)
    Events_Attributes: list[dict[str, str]] = field(default_factory=list)
    Links_TraceId: list[str] = field(default_factory=list)
    Links_SpanId: list[str] = field(default_factory=list)
    Links_TraceState: list[str] = field(default_factory=list)
    Links_Attributes: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class LogRow:
    table: ClassVar[str] = "otel_logs"

    Timestamp: int
    TraceId: str
    SpanId: str
    TraceFlags: int
    SeverityText: str
    SeverityNumber: int
    ServiceName: str
    Body: str
    ResourceSchemaUrl: str
    ResourceAttributes: dict[str, str]
    ScopeSchemaUrl: str
    ScopeName: str
    ScopeVersion: str
    ScopeAttributes: dict[str, str]
    LogAttributes: dict[str, str]
    EventName: str


@dataclass(slots=True)
class LlmCallRow:
    table: ClassVar[str] = "llm_calls"

    timestamp: int  # call start, ns since the epoch
    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    operation: str
    provider: str
    request_model: str
    response_model: str
    model: str  # response model, else request model
    response_id: str = ""
    input_messages: str = ""  # JSON text, the GenAI conventions' message shape
    output_messages: str = ""
    system_instructions: str = ""
    tool_definitions: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    cost_usd: float | None = None
    # By token class (normalize/cost.py); set when the price table priced the call
    input_cost_usd: float | None = None
    cache_read_cost_usd: float | None = None
    cache_write_cost_usd: float | None = None
    audio_input_cost_usd: float | None = None
    output_cost_usd: float | None = None
    reasoning_cost_usd: float | None = None
    audio_output_cost_usd: float | None = None
    cost_source: str = ""  # one of normalize/cost.py's COST_SOURCES
    usage_source: str = ""  # reported | estimated | none
    price_version: str = ""  # the price table's version, when it priced the call
    reported_cost_usd: float | None = None  # the instrumentation's own figure, when it gave one
    duration_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    status: str = "ok"  # ok | error
    error_type: str = ""
    error_message: str = ""
    finish_reasons: list[str] = field(default_factory=list)
    streamed: bool = False
    server_address: str = ""
    user_id: str = ""
    session_id: str = ""
    prompt_name: str = ""
    prompt_version: str = ""
    tags: list[str] = field(default_factory=list)
    experiment_id: str = ""
    dataset_item_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    dialect: str = ""  # whose conventions the span followed: genai, openllmetry, openlit, ...


@dataclass(slots=True)
class TraceSpanRow:
    """Every span in one vocabulary (normalize/agents.py): what the trace summary and the trace
    page read."""

    table: ClassVar[str] = "trace_spans"

    trace_id: str
    span_id: str
    parent_span_id: str
    start: int  # ns since the epoch
    end: int
    service_name: str
    span_name: str
    kind: str  # one of span_kinds.KINDS
    status: str  # ok | error
    dialect: str = ""  # whose marks said what the span is; empty for a plain span
    agent_name: str = ""
    tool_name: str = ""
    llm: bool = False  # the span has an llm_calls row (after stacked calls are folded)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    user_id: str = ""
    session_id: str = ""
    prompt_name: str = ""
    prompt_version: str = ""


@dataclass(slots=True)
class ToolCallRow:
    """One tool call (a span of kind tool), whatever its dialect."""

    table: ClassVar[str] = "tool_calls"

    timestamp: int  # ns since the epoch
    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    tool_name: str
    tool_call_id: str = ""
    tool_type: str = ""
    agent_name: str = ""
    arguments: str = ""  # JSON text when the span carried JSON or structured values
    result: str = ""
    status: str = "ok"  # ok | error
    error_type: str = ""
    error_message: str = ""
    duration_ms: float = 0.0
    user_id: str = ""
    session_id: str = ""
    dialect: str = ""


@dataclass(slots=True)
class LlmMessagesRow:
    """Messages of a call that came as log records without their span in the same batch."""

    table: ClassVar[str] = "llm_call_messages"

    timestamp: int
    trace_id: str
    span_id: str
    service_name: str
    input_messages: str = ""
    output_messages: str = ""
    system_instructions: str = ""


@dataclass(slots=True)
class MetricPoint:
    """The columns every otel_metrics_* table shares (insertion goes by column name)."""

    ResourceAttributes: dict[str, str]
    ResourceSchemaUrl: str
    ScopeName: str
    ScopeVersion: str
    ScopeAttributes: dict[str, str]
    ScopeDroppedAttrCount: int
    ScopeSchemaUrl: str
    ServiceName: str
    MetricName: str
    MetricDescription: str
    MetricUnit: str
    Attributes: dict[str, str]
    StartTimeUnix: int  # ns
    TimeUnix: int  # ns
    Exemplars_FilteredAttributes: list[dict[str, str]] = field(default_factory=list)
    Exemplars_TimeUnix: list[int] = field(default_factory=list)
    Exemplars_Value: list[float] = field(default_factory=list)
    Exemplars_SpanId: list[str] = field(default_factory=list)
    Exemplars_TraceId: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MetricSumRow(MetricPoint):
    table: ClassVar[str] = "otel_metrics_sum"

    Value: float = 0.0
    Flags: int = 0
    AggregationTemporality: int = 0
    IsMonotonic: bool = False


@dataclass(slots=True)
class MetricGaugeRow(MetricPoint):
    table: ClassVar[str] = "otel_metrics_gauge"

    Value: float = 0.0
    Flags: int = 0


@dataclass(slots=True)
class MetricHistogramRow(MetricPoint):
    table: ClassVar[str] = "otel_metrics_histogram"

    Count: int = 0
    Sum: float = 0.0
    BucketCounts: list[int] = field(default_factory=list)
    ExplicitBounds: list[float] = field(default_factory=list)
    Flags: int = 0
    Min: float = 0.0
    Max: float = 0.0
    AggregationTemporality: int = 0


_NESTED = ("Events_", "Links_", "Exemplars_")


def _field_names(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))


_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _getter(row_type: type) -> Callable[[Any], tuple[Any, ...]]:
    """A row's values in column order, as one tuple (every row type has several fields)."""
    getter = _GETTERS.get(row_type)
    if getter is None:
        getter = _GETTERS[row_type] = operator.attrgetter(*_field_names(row_type))
    return getter


def column_names(row_type: type) -> list[str]:
    """Table column names of a row type (`Events_Name` → `Events.Name`)."""
    return [
        name.replace("_", ".", 1) if name.startswith(_NESTED) else name
        for name in _field_names(row_type)
    ]


def to_columns(rows: list[Any]) -> list[list[Any]]:
    """Rows as column lists, the shape the store inserts (the writer's every batch: one getter
    in C per row, `zip` turns the rows into columns)."""
    return [list(column) for column in zip(*map(_getter(type(rows[0])), rows), strict=True)]


def to_values(row: Any) -> list[Any]:
    """One row's values in column order (a dead-letter entry's shape)."""
    return list(_getter(type(row))(row))


def from_values(row_type: type, columns: list[str], values: list[Any]) -> Any:
    """A row back from its values under its column names (`to_values`); columns added since the
    values were taken get their defaults."""
    if len(columns) != len(values):
        raise ValueError(f"{len(values)} values for {len(columns)} columns")
    return row_type(
        **{column.replace(".", "_", 1): v for column, v in zip(columns, values, strict=True)}
    )


@dataclass(slots=True)
class ScoreRow:
    table: ClassVar[str] = "scores"

    timestamp: int  # ns since the epoch
    trace_id: str
    span_id: str
    name: str
    value: float
    label: str = ""
    passed: bool | None = None
    explanation: str = ""
    source: str = ScoreSource.ONLINE.value
    evaluator_version: str = ""
    author: str = ""
    experiment_id: str = ""
    dataset_item_id: str = ""
    cost_usd: float | None = None
    duration_ms: float | None = None
    error: str = ""
    direction: str = "higher_is_better"  # or lower_is_better: which end of `value` is good
    level: str = "call"  # call | trace (span_id empty) | session (trace_id and span_id empty)
    session_id: str = ""

    @classmethod
    def from_score(
        cls,
        score: Score,
        *,
        trace_id: str,
        span_id: str,
        source: ScoreSource,
        timestamp: int | None = None,
        **columns: Any,
    ) -> ScoreRow:
        """The row of an evaluator's Score; `columns` are the row's other columns
        (experiment_id, dataset_item_id, level, session_id, ...)."""
        return cls(
            timestamp=time.time_ns() if timestamp is None else timestamp,
            trace_id=trace_id,
            span_id=span_id,
            name=score.name,
            value=score.value,
            label=score.label,
            passed=score.passed,
            explanation=score.explanation,
            source=ScoreSource(source).value,
            evaluator_version=score.evaluator_version,
            cost_usd=score.cost_usd,
            duration_ms=score.duration_ms,
            error=score.error,
            direction=score.direction,
            **columns,
        )


# A score's value on the higher-is-better scale, in SQL: what "below X" and "worst" mean for
# scores of either direction. Error scores (`error != ''`) are failures, not values.
ORIENTED_VALUE_SQL = "if(direction = 'lower_is_better', 1 - value, value)"


@dataclass(slots=True)
class CollectorStatsRow:
    """One collector's counters over one interval (counts are deltas; gauges are now)."""

    table: ClassVar[str] = "collector_stats"

    timestamp: int  # ns since the epoch
    instance: str
    host: str
    version: str
    started_at: int  # ns: when this collector process started
    interval_s: float
    status: str  # ok | degraded | unhealthy
    store_reachable: bool
    requests_accepted: int
    requests_refused: int
    refused: dict[str, int]  # by reason
    spans_received: int
    logs_received: int
    spans_written: int
    llm_calls_written: int
    logs_written: int
    writes: int
    write_failures: int
    deduplicated: dict[str, int]  # rows the store dropped as duplicates, by table
    write_ms_avg: float | None
    write_ms_max: float | None
    spool_bytes: int
    spool_segments: int
    spool_oldest_age_s: float
    evaluations: int
    evaluation_failures: int
    evaluation_drops: int
    evaluation_queue: int
    # Batches (one per segment and table) and rows the store refused for their values, moved to
    # the dead-letter folder during the interval; entries in the folder now (migration 010).
    deadlettered_batches: int = 0
    deadlettered_rows: int = 0
    deadletter_entries: int = 0


@dataclass(slots=True)
class DatasetRow:
    table: ClassVar[str] = "datasets"

    name: str
    version: str
    created_at: dt.datetime
    description: str
    item_count: int
    metadata: str


@dataclass(slots=True)
class DatasetItemRow:
    table: ClassVar[str] = "dataset_items"

    dataset_name: str
    dataset_version: str
    item_id: str
    input: str
    expected: str
    context: str
    metadata: str
    source_trace_id: str
    source_span_id: str
    created_at: dt.datetime
    position: int


@dataclass(slots=True)
class ExperimentRow:
    table: ClassVar[str] = "experiments"

    experiment_id: str
    name: str
    dataset_name: str
    dataset_version: str
    params: str
    evaluators: dict[str, str]
    git_commit: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str
    item_count: int
    summary: str
    repetitions: int = 1
    verdict: str = ""
    gate: str = ""


@dataclass(slots=True)
class ExperimentItemRow:
    table: ClassVar[str] = "experiment_items"

    experiment_id: str
    item_id: str
    trace_id: str
    span_id: str
    output: str
    status: str
    error: str
    started_at: dt.datetime
    duration_ms: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    model: str
    repetition: int = 0  # migration 008 added it (last) to the key
    # The item's LLM calls without a cost, and those that failed (migration 020; NULL: not
    # counted, a row stored before it or sent by an older client).
    unpriced_calls: int | None = None
    unpriced_failed: int | None = None


def insert_arguments(rows: Sequence[Any]) -> tuple[str, list[list[Any]], list[str]]:
    """(table, columns, column names) of rows of one type: what `Store.insert` takes."""
    row_type = type(rows[0])
    return row_type.table, to_columns(list(rows)), column_names(row_type)


# The columns of a call in a list, the API's (`GET /api/calls`) and the UI's alike.
CALL_LIST_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "trace_id",
    "span_id",
    "service_name",
    "operation",
    "provider",
    "model",
    "status",
    "error_type",
    "duration_ms",
    "time_to_first_token_ms",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "user_id",
    "session_id",
    "prompt_name",
    "prompt_version",
    "tags",
    "experiment_id",
    "dataset_item_id",
)
# The columns of completed_runs (migration 015) that the trace_summary view holds under the same
# names: all but `hour`.
RUN_SUMMARY_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "root_span_id",
    "root_name",
    "service_name",
    "root_kind",
    "status",
    "start",
    "end",
    "duration_ms",
    "updated_at",
    "agent_name",
    "spans",
    "llm_calls",
    "tool_calls",
    "errors",
    "tool_errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "unpriced_calls",
    "user_id",
    "session_id",
    "prompt_name",
    "prompt_version",
    "services",
)

# What promoting a call into a dataset reads of it.
CALL_PROMOTE_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "input_messages",
    "output_messages",
    "system_instructions",
    "model",
    "service_name",
    "prompt_name",
    "prompt_version",
)


# The rows the writer stores, by table (a dead-letter entry names its table).
WRITTEN_ROWS: dict[str, type] = {
    row_type.table: row_type
    for row_type in (
        TraceRow,
        LogRow,
        LlmCallRow,
        LlmMessagesRow,
        MetricSumRow,
        MetricGaugeRow,
        MetricHistogramRow,
        ScoreRow,
    )
}
