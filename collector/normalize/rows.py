"""Typed rows for the tables the collector writes; field order and names are the columns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


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
    cost_usd: float | None = None
    cost_source: str = ""  # "span" (the instrumentation's figure), "price_table", or "" (unpriced)
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


def column_names(row_type: type) -> list[str]:
    """Table column names of a row type (`Events_Name` → `Events.Name`)."""
    return [
        f.name.replace("_", ".", 1) if f.name.startswith(("Events_", "Links_")) else f.name
        for f in fields(row_type)
    ]


def to_columns(rows: list[Any]) -> list[list[Any]]:
    """Rows as column lists, the shape the store inserts."""
    names = [f.name for f in fields(rows[0])]
    return [[getattr(row, name) for row in rows] for name in names]


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
    source: str = "online"  # online | experiment | human
    evaluator_version: str = ""
    author: str = ""
    experiment_id: str = ""
    dataset_item_id: str = ""
    cost_usd: float | None = None
    duration_ms: float | None = None
    error: str = ""


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
    write_ms_avg: float | None
    write_ms_max: float | None
    spool_bytes: int
    spool_segments: int
    spool_oldest_age_s: float
    evaluations: int
    evaluation_failures: int
    evaluation_drops: int
    evaluation_queue: int
