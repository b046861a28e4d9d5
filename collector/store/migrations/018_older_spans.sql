-- The agent-run rows of spans stored before migration 011 (an Assay of 2026-12-02 or earlier):
-- 011 made trace_spans, tool_calls and trace_summaries for the spans to come, so the spans
-- already stored had none (their sessions answered 404, their runs were in no summary). The
-- rows are made in Python, by the normalizer's own code (collector/older_spans.py), from the
-- stored otel_traces rows; this table says there are some to make and how far that went, so
-- a start cut short leaves the rest to the next.
--
-- One row, replaced as the work goes on: the spans up to (until_ns, its newest span's start
-- when the upgrade found them) are written in (start, span id) order, up to (after_ns,
-- after_span). A store whose trace_spans holds rows already has had the writer make them
-- since 011: nothing is recorded for it.
CREATE TABLE IF NOT EXISTS {database}.older_spans
(
    until_ns Int64,
    after_ns Int64,
    after_span String,
    updated_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY tuple();

INSERT INTO {database}.older_spans (until_ns, after_ns, after_span)
SELECT max(toUnixTimestamp64Nano(Timestamp)), 0, '' FROM {database}.otel_traces
HAVING count() > 0 AND (SELECT count() FROM {database}.trace_spans) = 0;
