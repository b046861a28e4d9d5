-- Smaller merge blocks for the three tables whose merges hold the most (issue #22, item 2: the
-- embedded collector's peak memory; figures in docs/capacity.md, "Peak memory, the twelfth
-- pass").
--
-- A merge reads each source part in blocks of merge_max_block_size rows (8,192 by default). With
-- ~2 KB prompts, a block of llm_calls' or otel_traces' wide columns is megabytes per part, and a
-- block of trace_summaries' aggregate states (horizontal merges: AggregatingMergeTree) about ten
-- times its stored size. At 1,024 rows the merges running at the collector's peak under
-- bench/ingest.py held less (its anonymous memory at the peak ~20-60 MiB lower, within the rounds'
-- spread), and the merge threads' CPU per span stayed within the spread; the parts are the same.
ALTER TABLE {database}.llm_calls MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE {database}.otel_traces MODIFY SETTING merge_max_block_size = 1024;
ALTER TABLE {database}.trace_summaries MODIFY SETTING merge_max_block_size = 1024;
