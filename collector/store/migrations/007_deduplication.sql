-- Deduplication that tells the truth (issue #14).
--
-- Each collector counts the rows the store dropped as duplicates of rows it already had (a spool
-- segment replayed after a crash), by table, apart from the rows it wrote.
ALTER TABLE {database}.collector_stats
    ADD COLUMN IF NOT EXISTS deduplicated Map(LowCardinality(String), UInt64) AFTER write_failures;

-- A replayed segment's rows are dropped by the tables it writes, but the materialized views
-- below them still see the block and aggregate it again: the dashboards counted a replayed call
-- twice. Views pass on a token derived from the insert's, so with a deduplication window of
-- their own the targets drop the repeated block too. (A cluster's Replicated tables have one.)
ALTER TABLE {database}.otel_traces_trace_id_ts MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.llm_calls_1m MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.llm_calls_1h MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.llm_users_1d MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.llm_sessions_1d MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.llm_errors MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {database}.call_scores MODIFY SETTING non_replicated_deduplication_window = 10000;
