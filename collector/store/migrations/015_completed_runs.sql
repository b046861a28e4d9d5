-- Completed runs (issue #19): the trace_summary row of every run that is complete, written once
-- by the collector (collector/completed_runs.py) and read by the Agents dashboard and the
-- sessions list instead of the view, which merges every run's partial states at read time
-- (seconds to tens of seconds over a week of a million runs).
--
-- A run is complete, as for run-level evaluation, when its root span has arrived and the store
-- has received no span of it for `run_quiet_period` seconds; a late span makes it complete
-- again and its row is written again, with a later `updated_at`: readers take the newest row
-- per run (FINAL). The columns are trace_summary's, named alike. Rows are ordered by the hour
-- the run started, so a time range reads that range; a late span that starts in an earlier
-- hour than the run did (another host's clock) gives the run a second row under that hour.
CREATE TABLE IF NOT EXISTS {database}.completed_runs
(
    hour DateTime CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    root_span_id String CODEC(ZSTD(1)),
    root_name LowCardinality(String),
    service_name LowCardinality(String),
    root_kind LowCardinality(String),
    status LowCardinality(String),
    start DateTime64(9) CODEC(Delta, ZSTD(1)),
    end DateTime64(9) CODEC(Delta, ZSTD(1)),
    duration_ms Float64,
    updated_at DateTime64(3),
    agent_name LowCardinality(String),
    spans UInt64,
    llm_calls UInt64,
    tool_calls UInt64,
    errors UInt64,
    tool_errors UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Nullable(Float64),
    unpriced_calls UInt64,
    user_id String,
    session_id String,
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    services Array(LowCardinality(String)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toDate(hour)
ORDER BY (hour, trace_id)
TTL hour + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
