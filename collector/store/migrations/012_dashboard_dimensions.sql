-- What the Grafana dashboards and alert rules need beyond migrations 003 and 009: experiment
-- traffic told apart from production (the dashboards' "Include experiments" variable, off by
-- default), cached, cache-write and reasoning tokens, and failed calls by class.
--
-- Experiment traffic is defined once, here: a call with an experiment id, or sent by the
-- experiment runner's own service. Rollup rows written before this migration keep their sums;
-- their calls count as production (a sorting-key column cannot be back-filled) and their new
-- token sums are 0. The views are changed in place (MODIFY QUERY), so no insert is missed.

ALTER TABLE {database}.llm_calls
    ADD COLUMN IF NOT EXISTS is_experiment Bool
        MATERIALIZED experiment_id != '' OR service_name = 'assay-experiments';

-- Per minute and per hour: a production/experiment dimension, and the token classes.
ALTER TABLE {database}.llm_calls_1m
    ADD COLUMN IF NOT EXISTS is_experiment Bool AFTER prompt_version,
    MODIFY ORDER BY (minute, service_name, provider, model, prompt_name, prompt_version,
                     is_experiment);

ALTER TABLE {database}.llm_calls_1m
    ADD COLUMN IF NOT EXISTS cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_creation_input_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS reasoning_tokens SimpleAggregateFunction(sum, UInt64);

ALTER TABLE {database}.llm_calls_1h
    ADD COLUMN IF NOT EXISTS is_experiment Bool AFTER prompt_version,
    MODIFY ORDER BY (minute, service_name, provider, model, prompt_name, prompt_version,
                     is_experiment);

ALTER TABLE {database}.llm_calls_1h
    ADD COLUMN IF NOT EXISTS cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_creation_input_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS reasoning_tokens SimpleAggregateFunction(sum, UInt64);

ALTER TABLE {database}.llm_calls_1m_mv MODIFY QUERY
SELECT
    toStartOfMinute(timestamp) AS minute,
    service_name, provider, model, prompt_name, prompt_version,
    c.is_experiment AS is_experiment,
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
    ) AS time_to_first_token_ms,
    sum(ifNull(c.cached_input_tokens, 0)) AS cached_input_tokens,
    sum(ifNull(c.cache_creation_input_tokens, 0)) AS cache_creation_input_tokens,
    sum(ifNull(c.reasoning_tokens, 0)) AS reasoning_tokens
FROM {database}.llm_calls AS c
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version, is_experiment;

ALTER TABLE {database}.llm_calls_1h_mv MODIFY QUERY
SELECT
    toStartOfHour(m.minute) AS minute,
    service_name, provider, model, prompt_name, prompt_version, is_experiment,
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
        AS time_to_first_token_ms,
    sum(m.cached_input_tokens) AS cached_input_tokens,
    sum(m.cache_creation_input_tokens) AS cache_creation_input_tokens,
    sum(m.reasoning_tokens) AS reasoning_tokens
FROM {database}.llm_calls_1m AS m
GROUP BY minute, service_name, provider, model, prompt_name, prompt_version, is_experiment;

-- Users and sessions per day: the same dimension.
ALTER TABLE {database}.llm_users_1d
    ADD COLUMN IF NOT EXISTS is_experiment Bool AFTER user_id,
    MODIFY ORDER BY (day, service_name, provider, model, prompt_name, prompt_version, user_id,
                     is_experiment);

ALTER TABLE {database}.llm_users_1d_mv MODIFY QUERY
SELECT
    toDate(timestamp) AS day,
    service_name, provider, model, prompt_name, prompt_version, user_id,
    c.is_experiment AS is_experiment,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0)) AS input_tokens,
    sum(ifNull(c.output_tokens, 0)) AS output_tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd
FROM {database}.llm_calls AS c
WHERE user_id != ''
GROUP BY day, service_name, provider, model, prompt_name, prompt_version, user_id, is_experiment;

ALTER TABLE {database}.llm_sessions_1d
    ADD COLUMN IF NOT EXISTS is_experiment Bool AFTER session_id,
    MODIFY ORDER BY (day, session_id, is_experiment);

ALTER TABLE {database}.llm_sessions_1d_mv MODIFY QUERY
SELECT
    toDate(timestamp) AS day,
    session_id,
    c.is_experiment AS is_experiment,
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
GROUP BY day, session_id, is_experiment;

-- Failed calls: the dimension, and the class of each error, read from the client's error type
-- and, where that is generic (ClientError, APIStatusError), from the message: rate limits
-- (HTTP 429, throttling), timeouts, server errors (5xx, overloaded), connection failures,
-- refused credentials, bad requests, and the rest. Old rows get both on read (DEFAULT).
ALTER TABLE {database}.llm_errors
    ADD COLUMN IF NOT EXISTS is_experiment Bool DEFAULT service_name = 'assay-experiments',
    ADD COLUMN IF NOT EXISTS error_class LowCardinality(String) DEFAULT multiIf(
        match(error_type, '(?i)rate.?limit|throttl|too.?many.?requests|resource.?exhausted|quota|^429$'),
            'rate_limit',
        match(error_type, '(?i)time.?out|timed.?out|deadline'), 'timeout',
        match(error_type, '(?i)internal.?server|server.?error|unavailable|overloaded|gateway|^5[0-9][0-9]$'),
            'server_error',
        match(error_type, '(?i)connect|network|socket'), 'connection',
        match(error_type, '(?i)auth|permission|forbidden|^40[13]$'), 'auth',
        match(error_type, '(?i)bad.?request|invalid|validation|not.?found|unprocessable|conflict|content.?filter|^4[0-9][0-9]$'),
            'bad_request',
        match(error_message, '(?i)\\b429\\b|rate.?limit|throttl|too many requests|resource.?exhausted'),
            'rate_limit',
        match(error_message, '(?i)time.?out|timed out|deadline exceeded'), 'timeout',
        match(error_message, '(?i)^\\s*5[0-9][0-9]\\b|internal server error|service unavailable|overloaded'),
            'server_error',
        'other'
    );

ALTER TABLE {database}.llm_errors_mv MODIFY QUERY
SELECT
    timestamp, trace_id, span_id, service_name, provider, model, prompt_name, prompt_version,
    error_type, error_message, duration_ms, is_experiment
FROM {database}.llm_calls
WHERE status = 'error';

-- Scores: whether the call they grade is experiment traffic (experiment scores always are). The
-- view now also copies each score's direction (migration 008 added the column, not the copy).
ALTER TABLE {database}.call_scores
    ADD COLUMN IF NOT EXISTS is_experiment Bool DEFAULT experiment_id != '';

ALTER TABLE {database}.call_scores_mv MODIFY QUERY
SELECT
    s.timestamp AS timestamp, s.trace_id AS trace_id, s.span_id AS span_id, s.name AS name,
    s.value AS value, s.passed AS passed, s.explanation AS explanation, s.source AS source,
    s.author AS author, s.experiment_id AS experiment_id, s.dataset_item_id AS dataset_item_id,
    c.timestamp AS call_timestamp, c.service_name AS service_name, c.provider AS provider,
    c.model AS model, c.prompt_name AS prompt_name, c.prompt_version AS prompt_version,
    s.direction AS direction, s.experiment_id != '' OR c.is_experiment AS is_experiment
FROM {database}.scores AS s
LEFT JOIN (
    SELECT span_id, timestamp, service_name, provider, model, prompt_name, prompt_version,
        is_experiment
    FROM {database}.llm_calls
    WHERE span_id IN (SELECT span_id FROM {database}.scores)
) AS c ON c.span_id = s.span_id;
