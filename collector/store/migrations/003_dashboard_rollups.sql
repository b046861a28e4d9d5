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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_calls_1h_mv
TO {database}.llm_calls_1h
AS SELECT
    toStartOfHour(timestamp) AS minute,
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

-- Usage per hour, user and session: cost by user, top users and sessions by cost.
CREATE TABLE IF NOT EXISTS {database}.llm_usage_1h
(
    hour DateTime CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    user_id String,
    session_id String,
    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Float64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, service_name, provider, model, prompt_name, prompt_version, user_id, session_id)
TTL hour + INTERVAL 400 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_usage_1h_mv
TO {database}.llm_usage_1h
AS SELECT
    toStartOfHour(timestamp) AS hour,
    service_name, provider, model, prompt_name, prompt_version, user_id, session_id,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0)) AS input_tokens,
    sum(ifNull(c.output_tokens, 0)) AS output_tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd,
    countIf(c.cost_usd IS NULL) AS unpriced_calls
FROM {database}.llm_calls AS c
GROUP BY hour, service_name, provider, model, prompt_name, prompt_version, user_id, session_id;
