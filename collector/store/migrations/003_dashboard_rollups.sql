-- Rollups of llm_calls for the Grafana dashboards, filled by materialized views at insert time,
-- so a dashboard over a week reads thousands of pre-aggregated rows instead of millions of calls.
-- Counts and sums are SimpleAggregateFunction(sum); latency quantiles are t-digest states that
-- merge across rows (quantilesTDigestMerge). The views see calls stored after this migration;
-- a store is normally migrated before its first call arrives.

-- Per minute and per dimension the dashboards filter by: the monitoring panels over hours.
CREATE TABLE IF NOT EXISTS {database}.llm_calls_1m
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),
    duration_ms AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    time_to_first_token_ms AggregateFunction(quantilesTDigestIf(0.5, 0.95, 0.99), Float64, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, service_name, provider, model, prompt_name, prompt_version)
TTL minute + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_calls_1m_mv
TO {database}.llm_calls_1m
AS SELECT
    toStartOfMinute(timestamp) AS minute,
    service_name, provider, model, prompt_name, prompt_version,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0)) AS input_tokens,
    sum(ifNull(c.output_tokens, 0)) AS output_tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd,
    countIf(c.cost_usd IS NULL) AS unpriced_calls,
    quantilesTDigestState(0.5, 0.95, 0.99)(c.duration_ms) AS duration_ms,
    quantilesTDigestIfState(0.5, 0.95, 0.99)(
        ifNull(c.time_to_first_token_ms, 0), c.time_to_first_token_ms IS NOT NULL
    ) AS time_to_first_token_ms
FROM {database}.llm_calls AS c
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version;

-- The same per hour: what panels read when Grafana's interval is an hour or more (a week).
CREATE TABLE IF NOT EXISTS {database}.llm_calls_1h AS {database}.llm_calls_1m
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, service_name, provider, model, prompt_name, prompt_version)
TTL minute + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Fed by the per-minute rollup (views cascade), so each call is aggregated once at insert.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_calls_1h_mv
TO {database}.llm_calls_1h
AS SELECT
    toStartOfHour(m.minute) AS minute,
    service_name, provider, model, prompt_name, prompt_version,
    sum(m.calls) AS calls,
    sum(m.errors) AS errors,
    sum(m.input_tokens) AS input_tokens,
    sum(m.output_tokens) AS output_tokens,
    sum(m.cost_usd) AS cost_usd,
    sum(m.unpriced_calls) AS unpriced_calls,
    quantilesTDigestMergeState(0.5, 0.95, 0.99)(m.duration_ms) AS duration_ms,
    quantilesTDigestIfMergeState(0.5, 0.95, 0.99)(m.time_to_first_token_ms)
        AS time_to_first_token_ms
FROM {database}.llm_calls_1m AS m
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version;

-- Usage per day and user, per dimension: cost by user, top users by cost.
CREATE TABLE IF NOT EXISTS {database}.llm_users_1d
(
    day Date,
    service_name LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    user_id String,
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, service_name, provider, model, prompt_name, prompt_version, user_id)
TTL day + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_users_1d_mv
TO {database}.llm_users_1d
AS SELECT
    toDate(timestamp) AS day,
    service_name, provider, model, prompt_name, prompt_version, user_id,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0)) AS input_tokens,
    sum(ifNull(c.output_tokens, 0)) AS output_tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd
FROM {database}.llm_calls AS c
WHERE user_id != ''
GROUP BY day, service_name, provider, model, prompt_name, prompt_version, user_id;

-- One row per session and day: top sessions by cost. A session is kept whole; the dimensions
-- it touched are sets, so "sessions that used model X" is `has(models, 'X')`.
CREATE TABLE IF NOT EXISTS {database}.llm_sessions_1d
(
    day Date,
    session_id String,
    user_id SimpleAggregateFunction(any, String),
    first_seen SimpleAggregateFunction(min, DateTime64(3)),
    last_seen SimpleAggregateFunction(max, DateTime64(3)),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    providers SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    models SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    prompt_names SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    prompt_versions SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, session_id)
TTL day + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_sessions_1d_mv
TO {database}.llm_sessions_1d
AS SELECT
    toDate(timestamp) AS day,
    session_id,
    any(user_id) AS user_id,
    min(toDateTime64(timestamp, 3)) AS first_seen,
    max(toDateTime64(timestamp, 3)) AS last_seen,
    groupUniqArray(toString(service_name)) AS services,
    groupUniqArray(toString(provider)) AS providers,
    groupUniqArray(toString(model)) AS models,
    groupUniqArray(toString(prompt_name)) AS prompt_names,
    groupUniqArray(toString(prompt_version)) AS prompt_versions,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0) + ifNull(c.output_tokens, 0)) AS tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd
FROM {database}.llm_calls AS c
WHERE session_id != ''
GROUP BY day, session_id;

-- Failed calls only (a few percent of all): the recent-errors table of the monitoring dashboard.
CREATE TABLE IF NOT EXISTS {database}.llm_errors
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String,
    span_id String,
    service_name LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    error_type LowCardinality(String),
    error_message String CODEC(ZSTD(1)),
    duration_ms Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (timestamp, span_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_errors_mv
TO {database}.llm_errors
AS SELECT
    timestamp, trace_id, span_id, service_name, provider, model, prompt_name, prompt_version,
    error_type, error_message, duration_ms
FROM {database}.llm_calls
WHERE status = 'error';

-- Every score with the dimensions of the call it grades, so the evaluation panels filter by
-- service, model or prompt without joining millions of calls. Inside the view, `scores` is the
-- inserted block only, so the lookup reads just the graded calls (bloom index on span_id).
-- A score whose call is not stored gets empty dimensions ("All" still counts it).
CREATE TABLE IF NOT EXISTS {database}.call_scores
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String,
    span_id String,
    name LowCardinality(String),
    value Float64,
    passed Nullable(Bool),
    explanation String CODEC(ZSTD(3)),
    source LowCardinality(String),
    author String,
    experiment_id String,
    dataset_item_id String,
    call_timestamp DateTime64(9),
    service_name LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree(timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (source, name, trace_id, span_id, author, experiment_id, dataset_item_id)
TTL toDateTime(timestamp) + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.call_scores_mv
TO {database}.call_scores
AS SELECT
    s.timestamp AS timestamp, s.trace_id AS trace_id, s.span_id AS span_id, s.name AS name,
    s.value AS value, s.passed AS passed, s.explanation AS explanation, s.source AS source,
    s.author AS author, s.experiment_id AS experiment_id, s.dataset_item_id AS dataset_item_id,
    c.timestamp AS call_timestamp, c.service_name AS service_name, c.provider AS provider,
    c.model AS model, c.prompt_name AS prompt_name, c.prompt_version AS prompt_version
FROM {database}.scores AS s
LEFT JOIN (
    SELECT span_id, timestamp, service_name, provider, model, prompt_name, prompt_version
    FROM {database}.llm_calls
    WHERE span_id IN (SELECT span_id FROM {database}.scores)
) AS c ON c.span_id = s.span_id;
