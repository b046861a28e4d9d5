-- What each dataset item gave in each experiment run: the task's output or error, its latency
-- and its LLM usage, and the trace it ran in. Inputs and expected outputs stay in
-- dataset_items (joined on the experiment's dataset version); scores stay in scores.
-- A retried batch (same deduplication token) is dropped at insert.
CREATE TABLE IF NOT EXISTS {database}.experiment_items
(
    experiment_id String,
    item_id String,
    trace_id String,
    span_id String,
    output String CODEC(ZSTD(3)),
    status LowCardinality(String),
    error String CODEC(ZSTD(1)),
    started_at DateTime64(3),
    duration_ms Float64,
    input_tokens Nullable(UInt64),
    output_tokens Nullable(UInt64),
    cost_usd Nullable(Float64),
    model LowCardinality(String)
)
ENGINE = ReplacingMergeTree(started_at)
ORDER BY (experiment_id, item_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The position of an item in its dataset version, so a dataset reads back in its own order.
ALTER TABLE {database}.dataset_items ADD COLUMN IF NOT EXISTS position UInt32 DEFAULT 0;
