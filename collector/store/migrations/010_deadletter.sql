-- The dead-letter folder in the collectors' counters (issue #15): rows the store refused for
-- their values are moved there so that the rest of the batch, and every batch after it, is
-- stored (collector/deadletter.py). Per interval: batches (one per spool segment and table) and
-- rows moved there; and the entries the folder holds now, waiting for `assay deadletter`.
ALTER TABLE {database}.collector_stats
    ADD COLUMN IF NOT EXISTS deadlettered_batches UInt64 AFTER evaluation_queue,
    ADD COLUMN IF NOT EXISTS deadlettered_rows UInt64 AFTER deadlettered_batches,
    ADD COLUMN IF NOT EXISTS deadletter_entries UInt64 AFTER deadlettered_rows;
