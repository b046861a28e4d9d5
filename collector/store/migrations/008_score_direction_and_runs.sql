-- Scores that mean one thing, experiment runs that keep their repetitions and their verdict.

-- Which end of a score is the good one. Every built-in evaluator is higher-is-better now; a
-- user's own may declare lower-is-better, and every score row says which it is.
ALTER TABLE {database}.scores ADD COLUMN IF NOT EXISTS direction LowCardinality(String) DEFAULT 'higher_is_better';
-- Stored scores of the three presets that scored the bad outcome 1 (renamed no_pii, no_refusal
-- and no_toxicity since) keep their values and say so. `refusal(expect_refusal=True)` scored
-- 1 for the expected refusal: its rows passed exactly when they were 1, and stay as they are.
ALTER TABLE {database}.scores UPDATE direction = 'lower_is_better' WHERE source != 'human' AND (name IN ('pii', 'toxicity') OR (name = 'refusal' AND (passed IS NULL OR passed = (value = 0)))) SETTINGS mutations_sync = 2;
-- The per-call copy of every score that the dashboards read (filled by call_scores_mv).
ALTER TABLE {database}.call_scores ADD COLUMN IF NOT EXISTS direction LowCardinality(String) DEFAULT 'higher_is_better';
ALTER TABLE {database}.call_scores UPDATE direction = 'lower_is_better' WHERE source != 'human' AND (name IN ('pii', 'toxicity') OR (name = 'refusal' AND (passed IS NULL OR passed = (value = 0)))) SETTINGS mutations_sync = 2;

-- A run's repetitions (each item run k times), and the verdict of the gate that judged it
-- (`assay eval run`: passed | failed, '' when no gate ran) with what it checked (JSON).
ALTER TABLE {database}.experiments ADD COLUMN IF NOT EXISTS repetitions UInt32 DEFAULT 1, ADD COLUMN IF NOT EXISTS verdict LowCardinality(String) DEFAULT '', ADD COLUMN IF NOT EXISTS gate String DEFAULT '';
-- Each repetition of an item is a row of its own: the repetition joins the replacing key
-- (a column added with the key change may not have a default; a UInt32 starts at 0 anyway).
ALTER TABLE {database}.experiment_items ADD COLUMN IF NOT EXISTS repetition UInt32, MODIFY ORDER BY (experiment_id, item_id, repetition);
