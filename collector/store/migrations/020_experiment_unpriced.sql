-- An experiment item's LLM calls without a cost (pricing.UNPRICED_CALLS: unknown model, no usage,
-- or failed) and those of them that failed: its cost_usd sums only the priced calls, so without
-- these the item, run and comparison costs left the rest out without saying so.
--
-- NULL for rows stored before this migration (and from clients that do not send them): the
-- views say "not counted" rather than a count of 0 nobody made.

ALTER TABLE {database}.experiment_items
    ADD COLUMN IF NOT EXISTS unpriced_calls Nullable(UInt32);

ALTER TABLE {database}.experiment_items
    ADD COLUMN IF NOT EXISTS unpriced_failed Nullable(UInt32);
