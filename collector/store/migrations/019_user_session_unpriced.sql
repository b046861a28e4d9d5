-- Unpriced calls in the per-user and per-session rollups, as llm_calls_1m has counted them since
-- migration 003: the cost panels over users and sessions read NULL (unknown), not $0, for a user
-- or session none of whose calls could be priced (a model missing from the price table), as
-- the panels over models, providers and services do (PRICED_COST in collector/grafana/sql.py).
-- A call is unpriced when its cost is NULL: the same count as llm_calls_1m_mv's (migration 012)
-- and as the price-table recompute's corrections (collector/price_tables.py). Signed, like
-- llm_calls_1m's (migration 009): a recompute that prices calls again subtracts them.
--
-- Rows stored before this migration have unpriced_calls = 0: their cost reads as before (a sum,
-- $0 where nothing was priced), not NULL; `assay prices recompute` over their days corrects them.
-- The views are changed in place (MODIFY QUERY), so no insert is missed.

ALTER TABLE {database}.llm_users_1d
    ADD COLUMN IF NOT EXISTS unpriced_calls SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE {database}.llm_sessions_1d
    ADD COLUMN IF NOT EXISTS unpriced_calls SimpleAggregateFunction(sum, Int64) DEFAULT 0;

ALTER TABLE {database}.llm_users_1d_mv MODIFY QUERY
SELECT
    toDate(timestamp) AS day,
    service_name, provider, model, prompt_name, prompt_version, user_id,
    c.is_experiment AS is_experiment,
    count() AS calls,
    countIf(c.status = 'error') AS errors,
    sum(ifNull(c.input_tokens, 0)) AS input_tokens,
    sum(ifNull(c.output_tokens, 0)) AS output_tokens,
    sum(ifNull(c.cost_usd, 0)) AS cost_usd,
    toInt64(countIf(c.cost_usd IS NULL)) AS unpriced_calls
FROM {database}.llm_calls AS c
WHERE user_id != ''
GROUP BY day, service_name, provider, model, prompt_name, prompt_version, user_id, is_experiment;

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
    sum(ifNull(c.cost_usd, 0)) AS cost_usd,
    toInt64(countIf(c.cost_usd IS NULL)) AS unpriced_calls
FROM {database}.llm_calls AS c
WHERE session_id != ''
GROUP BY day, session_id, is_experiment;
