-- The collectors' own counters, one row per collector instance every few seconds
-- (collector/monitoring.py). Counts are per interval (sum them), gauges are the moment's.
CREATE TABLE IF NOT EXISTS {database}.collector_stats
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    instance LowCardinality(String),
    host LowCardinality(String),
    version LowCardinality(String),
    started_at DateTime64(9),
    interval_s Float64,
    status LowCardinality(String),
    store_reachable Bool,
    requests_accepted UInt64,
    requests_refused UInt64,
    refused Map(LowCardinality(String), UInt64),
    spans_received UInt64,
    logs_received UInt64,
    spans_written UInt64,
    llm_calls_written UInt64,
    logs_written UInt64,
    writes UInt64,
    write_failures UInt64,
    write_ms_avg Nullable(Float64),
    write_ms_max Nullable(Float64),
    spool_bytes UInt64,
    spool_segments UInt64,
    spool_oldest_age_s Float64,
    evaluations UInt64,
    evaluation_failures UInt64,
    evaluation_drops UInt64,
    evaluation_queue UInt64
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (instance, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY;
