-- Vertical merges for the two tables with wide rows (issue #22, item 2: the collector's peak
-- memory; figures in docs/capacity.md, "Peak memory").
--
-- A horizontal merge reads a block of every column of every source part at once: for
-- llm_calls' messages and otel_traces' attributes that was the largest share of the embedded
-- collector's peak. The vertical algorithm merges the sorting key, the skip indexes' columns and
-- the version first, then gathers each other column on its own. ClickHouse takes it only above
-- 131,072 rows and 11 gathered columns by default, which a collector's merges of a few segments'
-- parts stay under; with these settings every merge into a wide part (10 MiB and more) is
-- vertical. Merges into compact parts stay horizontal whatever the settings.
--
-- Not listed: trace_spans (narrow rows: a horizontal merge holds ~10 MiB), llm_call_messages
-- and tool_calls (two or three wide text columns: measured, no lower peak), and the
-- AggregatingMergeTree tables (trace_summaries, the rollups), which always merge horizontally.
ALTER TABLE {database}.llm_calls MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 1, vertical_merge_algorithm_min_columns_to_activate = 1;
ALTER TABLE {database}.otel_traces MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 1, vertical_merge_algorithm_min_columns_to_activate = 1;
