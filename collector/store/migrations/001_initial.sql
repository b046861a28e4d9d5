-- The initial schema: every span, one typed row per LLM call, scores, datasets, experiments.
-- `{database}` is replaced by the configured database name (default `assay`).

-- Every span, in the OpenTelemetry Collector ClickHouse exporter's schema so that
-- Grafana's ClickHouse plugin (OTel mode) and its trace view work on it unchanged.
-- Replacing on the span id: a span a client sent twice (its acknowledgement was lost) is
-- merged into one row; retries and replays inside the collector are dropped at insert already.
CREATE TABLE IF NOT EXISTS {database}.otel_traces
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested
    (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested
    (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp, TraceId, SpanId)
TTL toDateTime(Timestamp) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Start and end of every trace, so trace lookups by id can be narrowed by time.
CREATE TABLE IF NOT EXISTS {database}.otel_traces_trace_id_ts
(
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
TTL toDateTime(Start) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.otel_traces_trace_id_ts_mv
TO {database}.otel_traces_trace_id_ts
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {database}.otel_traces
WHERE TraceId != ''
GROUP BY TraceId;

-- Log records (OTLP logs), in the OpenTelemetry Collector ClickHouse exporter's schema.
CREATE TABLE IF NOT EXISTS {database}.otel_logs
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName LowCardinality(String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- One typed row per LLM call. Columns people and dashboards rely on are never renamed.
-- Replacing on the span id, like otel_traces.
-- Token counts and cost are Nullable: unknown is NULL, never 0.
CREATE TABLE IF NOT EXISTS {database}.llm_calls
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    service_name LowCardinality(String),
    operation LowCardinality(String),
    provider LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    model LowCardinality(String),
    response_id String CODEC(ZSTD(1)),
    input_messages String CODEC(ZSTD(3)),
    output_messages String CODEC(ZSTD(3)),
    system_instructions String CODEC(ZSTD(3)),
    tool_definitions String CODEC(ZSTD(3)),
    input_tokens Nullable(UInt64),
    output_tokens Nullable(UInt64),
    cached_input_tokens Nullable(UInt64),
    cache_creation_input_tokens Nullable(UInt64),
    reasoning_tokens Nullable(UInt64),
    cost_usd Nullable(Float64),
    cost_source LowCardinality(String),
    duration_ms Float64,
    time_to_first_token_ms Nullable(Float64),
    status LowCardinality(String),
    error_type LowCardinality(String),
    error_message String CODEC(ZSTD(1)),
    finish_reasons Array(LowCardinality(String)),
    streamed Bool,
    server_address LowCardinality(String),
    user_id String,
    session_id String,
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    tags Array(LowCardinality(String)),
    experiment_id String,
    dataset_item_id String,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_span_id span_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, model, timestamp, span_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Every score: online evaluators, experiments and human 👍/👎. A later score with the same
-- key (source, name, target, author, experiment) replaces an earlier one.
CREATE TABLE IF NOT EXISTS {database}.scores
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String,
    span_id String,
    name LowCardinality(String),
    value Float64,
    label String,
    passed Nullable(Bool),
    explanation String CODEC(ZSTD(3)),
    source LowCardinality(String),
    evaluator_version LowCardinality(String),
    author String,
    experiment_id String,
    dataset_item_id String,
    cost_usd Nullable(Float64),
    duration_ms Nullable(Float64),
    error String,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_span_id span_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(timestamp)
ORDER BY (source, name, trace_id, span_id, author, experiment_id, dataset_item_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Golden datasets, versioned by the hash of their content.
CREATE TABLE IF NOT EXISTS {database}.datasets
(
    name String,
    version String,
    created_at DateTime64(3),
    description String,
    item_count UInt64,
    metadata String
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (name, version);

CREATE TABLE IF NOT EXISTS {database}.dataset_items
(
    dataset_name String,
    dataset_version String,
    item_id String,
    input String CODEC(ZSTD(3)),
    expected String CODEC(ZSTD(3)),
    context String CODEC(ZSTD(3)),
    metadata String,
    source_trace_id String,
    source_span_id String,
    created_at DateTime64(3)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (dataset_name, dataset_version, item_id);

-- One row per experiment run: what ran, on what, with which evaluators, and how it scored.
CREATE TABLE IF NOT EXISTS {database}.experiments
(
    experiment_id String,
    name String,
    dataset_name String,
    dataset_version String,
    params String,
    evaluators Map(String, String),
    git_commit String,
    started_at DateTime64(3),
    ended_at Nullable(DateTime64(3)),
    status LowCardinality(String),
    item_count UInt64,
    summary String
)
ENGINE = ReplacingMergeTree(started_at)
ORDER BY (name, experiment_id);
