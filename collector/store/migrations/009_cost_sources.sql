-- Cost you can audit: where each call's token counts and cost came from, the cost split by
-- token class, and the price table that priced it; the rollups count unpriced calls by reason.

-- Where the token counts came from: `reported` (the provider's usage), `estimated` (counted by
-- the instrumentation), `none` (no usage). Calls stored before this migration read it from the
-- span's own mark when it had one, else from whether they have token counts.
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String)
    DEFAULT multiIf(
        attributes['assay.usage.source'] IN ('reported', 'estimated', 'none'),
        attributes['assay.usage.source'],
        input_tokens IS NULL AND output_tokens IS NULL, 'none',
        'reported'
    ) AFTER cost_source;

-- The version of the price table that priced the call (`assay prices` shows it); '' for calls
-- priced before this migration, until `assay prices recompute` prices them again.
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS price_version LowCardinality(String)
    DEFAULT '' AFTER usage_source;

-- Audio tokens, part of input_tokens and output_tokens, priced on their own.
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS audio_input_tokens Nullable(UInt64)
    AFTER reasoning_tokens;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS audio_output_tokens Nullable(UInt64)
    AFTER audio_input_tokens;

-- The cost by token class (they add up to cost_usd when the price table priced the call; NULL
-- otherwise): uncached input, cache reads, cache writes, audio input, output (text, without
-- reasoning), reasoning, audio output.
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS input_cost_usd Nullable(Float64)
    AFTER cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS cache_read_cost_usd Nullable(Float64)
    AFTER input_cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS cache_write_cost_usd Nullable(Float64)
    AFTER cache_read_cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS audio_input_cost_usd Nullable(Float64)
    AFTER cache_write_cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS output_cost_usd Nullable(Float64)
    AFTER audio_input_cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS reasoning_cost_usd Nullable(Float64)
    AFTER output_cost_usd;
ALTER TABLE {database}.llm_calls ADD COLUMN IF NOT EXISTS audio_output_cost_usd Nullable(Float64)
    AFTER reasoning_cost_usd;

-- cost_source now says why a call has no cost: `priced` (the price table), `reported` (the
-- instrumentation's own figure), `unpriced_model`, `no_usage`, `failed_call`. Calls stored
-- before take the new names; the reason of an unpriced one is read from its row.
ALTER TABLE {database}.llm_calls UPDATE cost_source = multiIf(
        cost_source = 'price_table', 'priced',
        cost_source = 'span', 'reported',
        input_tokens IS NOT NULL OR output_tokens IS NOT NULL, 'unpriced_model',
        status = 'error', 'failed_call',
        'no_usage'
    )
    WHERE cost_source IN ('price_table', 'span', '')
    SETTINGS mutations_sync = 2;

-- Every price table a collector priced calls with, by version, so the version on a row names
-- the exact prices used. `origin` is `built-in`, `file` (ASSAY_PRICES_FILE) or `loaded`
-- (`assay prices load`: `overlay` keeps the loaded file, which collectors apply at start-up).
CREATE TABLE IF NOT EXISTS {database}.price_tables
(
    version String,
    taken String,
    activated_at DateTime64(3),
    origin LowCardinality(String),
    overlay String CODEC(ZSTD(3)),
    prices String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(activated_at)
ORDER BY (version, origin);

-- Unpriced calls by reason, in the dashboard rollups. Counts may go down when calls are
-- priced again (`assay prices recompute` adds correcting rows), so they are signed.
ALTER TABLE {database}.llm_calls_1m MODIFY COLUMN unpriced_calls
    SimpleAggregateFunction(sum, Int64);
ALTER TABLE {database}.llm_calls_1h MODIFY COLUMN unpriced_calls
    SimpleAggregateFunction(sum, Int64);
ALTER TABLE {database}.llm_calls_1m ADD COLUMN IF NOT EXISTS unpriced_model_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1m ADD COLUMN IF NOT EXISTS no_usage_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1m ADD COLUMN IF NOT EXISTS failed_unpriced_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1m ADD COLUMN IF NOT EXISTS estimated_usage_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1h ADD COLUMN IF NOT EXISTS unpriced_model_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1h ADD COLUMN IF NOT EXISTS no_usage_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1h ADD COLUMN IF NOT EXISTS failed_unpriced_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;
ALTER TABLE {database}.llm_calls_1h ADD COLUMN IF NOT EXISTS estimated_usage_calls
    SimpleAggregateFunction(sum, Int64) DEFAULT 0;

-- The views that fill them, again with the new counts (a store migrates before calls arrive).
DROP VIEW IF EXISTS {database}.llm_calls_1h_mv;
DROP VIEW IF EXISTS {database}.llm_calls_1m_mv;

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
    toInt64(countIf(c.cost_usd IS NULL)) AS unpriced_calls,
    toInt64(countIf(c.cost_source = 'unpriced_model')) AS unpriced_model_calls,
    toInt64(countIf(c.cost_source = 'no_usage')) AS no_usage_calls,
    toInt64(countIf(c.cost_source = 'failed_call')) AS failed_unpriced_calls,
    toInt64(countIf(c.usage_source = 'estimated')) AS estimated_usage_calls,
    quantilesTDigestState(0.5, 0.95, 0.99)(c.duration_ms) AS duration_ms,
    quantilesTDigestIfState(0.5, 0.95, 0.99)(
        ifNull(c.time_to_first_token_ms, 0), c.time_to_first_token_ms IS NOT NULL
    ) AS time_to_first_token_ms
FROM {database}.llm_calls AS c
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version;

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
    sum(m.unpriced_model_calls) AS unpriced_model_calls,
    sum(m.no_usage_calls) AS no_usage_calls,
    sum(m.failed_unpriced_calls) AS failed_unpriced_calls,
    sum(m.estimated_usage_calls) AS estimated_usage_calls,
    quantilesTDigestMergeState(0.5, 0.95, 0.99)(m.duration_ms) AS duration_ms,
    quantilesTDigestIfMergeState(0.5, 0.95, 0.99)(m.time_to_first_token_ms)
        AS time_to_first_token_ms
FROM {database}.llm_calls_1m AS m
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version;
