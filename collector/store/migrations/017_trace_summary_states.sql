-- trace_summaries' per-span states in two instead of nine (issue #22, item 2: the collector's
-- CPU per span and peak memory; figures in docs/capacity.md, "trace_summaries' states").
--
-- Migration 011 kept six uniqExact/uniqExactIf hash sets of the same span-id hash (spans, errors,
-- LLM calls, tool calls, tool errors, unpriced calls) and three maxMap states keyed by it (input
-- and output tokens, cost). A partial row holds one span at the collector's pace, so the states'
-- fixed size was most of a row: its view cost ~20-30 µs per span at insert, and a merge of its
-- parts held ~100 MiB for 16,000 such rows. Now:
-- - `span_flags`: every span id hash to the OR of its flags (bit 0 error, 1 LLM call, 2 tool
--   call, 3 tool error, 4 LLM call without a price). The -Map combinator keeps a key whose flags
--   are all 0, so the map's size is the number of distinct spans, and OR per key counts a span
--   in a flag's count when any copy of it had the flag, as uniqExactIf did.
-- - `call_usage`: the span id hash to the largest input tokens, output tokens and cost seen
--   (maxMap keeps zero values), for spans that carry any of them. A missing token count is 0 (it
--   adds nothing to the sums); a missing cost is -inf (it loses to any price, and the read view
--   leaves it out), so a span's cost is its largest price, as before, and a trace's cost is NULL
--   when it has LLM calls and none has a price. Costs are finite (the normalizer stores a
--   non-finite one as NULL).
-- Both stay idempotent per span: spans in any order, late spans and a span sent twice give the
-- same summary. The trace_summary view's columns and answers do not change.

ALTER TABLE {database}.trace_summaries ADD COLUMN IF NOT EXISTS span_flags AggregateFunction(groupBitOrMap, Map(UInt64, UInt8)) AFTER agent_name, ADD COLUMN IF NOT EXISTS call_usage AggregateFunction(maxMap, Array(UInt64), Array(UInt64), Array(UInt64), Array(Float64)) AFTER span_flags;

ALTER TABLE {database}.trace_summaries_mv MODIFY QUERY
SELECT
    toStartOfHour(s.start) AS hour,
    s.trace_id AS trace_id,
    min(s.start) AS start,
    max(s.end) AS end,
    now64(3) AS updated_at,
    max(toUInt8(s.parent_span_id = '')) AS has_root,
    argMinState(
        (s.span_id, toString(s.span_name), toString(s.service_name), toString(s.kind), toString(s.status)),
        (toUInt8(s.parent_span_id != ''), s.start)
    ) AS root,
    argMinState(toString(s.agent_name), (toUInt8(s.agent_name = ''), s.start)) AS agent_name,
    groupBitOrMapState(map(
        cityHash64(s.span_id),
        toUInt8(
            (s.status = 'error') + 2 * s.llm + 4 * (s.kind = 'tool')
            + 8 * (s.kind = 'tool' AND s.status = 'error') + 16 * (s.llm AND s.cost_usd IS NULL)
        )
    )) AS span_flags,
    maxMapState(
        if((s.input_tokens IS NULL AND s.output_tokens IS NULL AND s.cost_usd IS NULL) AS no_usage, [], [cityHash64(s.span_id)]),
        if(no_usage, [], [ifNull(s.input_tokens, 0)]),
        if(no_usage, [], [ifNull(s.output_tokens, 0)]),
        if(no_usage, [], [ifNull(s.cost_usd, -inf)])
    ) AS call_usage,
    max(s.user_id) AS user_id,
    max(s.session_id) AS session_id,
    max(toString(s.prompt_name)) AS prompt_name,
    max(toString(s.prompt_version)) AS prompt_version,
    groupUniqArray(toString(s.service_name)) AS services
FROM {database}.trace_spans AS s
WHERE s.trace_id != ''
GROUP BY hour, trace_id;

-- The read view reads the old states: it goes first, and comes back at the end on the new ones.
-- Meanwhile (the rebuild below: 10-15 s per million spans) a reader of a server store gets an
-- error, not counts the rebuild has not reached yet; an embedded store serves nobody before.
DROP VIEW IF EXISTS {database}.trace_summary;

-- The old states go before the stored summaries get the new ones, so that the background merges
-- of the rows added below carry the two new states only (with the nine as well, the process's
-- peak at 1.2 million spans was 1.27 GiB against 0.68).
ALTER TABLE {database}.trace_summaries DROP COLUMN IF EXISTS spans, DROP COLUMN IF EXISTS errors, DROP COLUMN IF EXISTS llm_calls, DROP COLUMN IF EXISTS tool_calls, DROP COLUMN IF EXISTS tool_errors, DROP COLUMN IF EXISTS unpriced_calls, DROP COLUMN IF EXISTS input_tokens, DROP COLUMN IF EXISTS output_tokens, DROP COLUMN IF EXISTS cost_usd;

-- The summaries already stored get the new states from their spans (trace_spans, which keeps
-- them as long as trace_summaries keeps its rows: one retention for both): one partial row per
-- span, beside the old rows, its states made from that span alone (initializeAggregation); the
-- table's background merges fold them into the trace's rows as they fold the view's. No GROUP
-- BY: the statement streams trace_spans a block at a time, part after part, so it holds a
-- block's rows whatever the store holds (a GROUP BY over the store grew with it: 1.4 GiB at 1.2
-- million spans; figures in docs/capacity.md). Blocks of 8,192 rows are written as they come
-- (not squashed to a million rows first), by one thread, without merging a block's rows at
-- insert (`optimize_on_insert` held 200 MiB for such a block), and without deduplication (the
-- rows are idempotent, and none of their blocks takes a place in the window that deduplicates
-- the collector's inserts). The partial rows change no other column: the old rows keep theirs,
-- and what these give besides the new states is what any copy of the spans gives (min, max,
-- sets); `updated_at` is left at its lowest, so the old rows' time stands, and the root and
-- agent are left empty (an argMin takes either of two copies of a span that tie, so it could
-- pick another). Run twice, it adds the same states again, which change nothing either.
INSERT INTO {database}.trace_summaries (hour, trace_id, start, end, updated_at, has_root, span_flags, call_usage, user_id, session_id, prompt_name, prompt_version, services)
SELECT
    toStartOfHour(s.start) AS hour,
    s.trace_id AS trace_id,
    s.start AS start,
    s.end AS end,
    toDateTime64(0, 3) AS updated_at,
    toUInt8(s.parent_span_id = '') AS has_root,
    initializeAggregation('groupBitOrMapState', map(
        cityHash64(s.span_id),
        toUInt8(
            (s.status = 'error') + 2 * s.llm + 4 * (s.kind = 'tool')
            + 8 * (s.kind = 'tool' AND s.status = 'error') + 16 * (s.llm AND s.cost_usd IS NULL)
        )
    )) AS span_flags,
    initializeAggregation(
        'maxMapState',
        if((s.input_tokens IS NULL AND s.output_tokens IS NULL AND s.cost_usd IS NULL) AS no_usage, [], [cityHash64(s.span_id)]),
        if(no_usage, [], [ifNull(s.input_tokens, 0)]),
        if(no_usage, [], [ifNull(s.output_tokens, 0)]),
        if(no_usage, [], [ifNull(s.cost_usd, -inf)])
    ) AS call_usage,
    s.user_id AS user_id,
    s.session_id AS session_id,
    toString(s.prompt_name) AS prompt_name,
    toString(s.prompt_version) AS prompt_version,
    [toString(s.service_name)] AS services
FROM {database}.trace_spans AS s
WHERE s.trace_id != ''
SETTINGS max_block_size = 8192, min_insert_block_size_rows = 8192, min_insert_block_size_bytes = 0, max_insert_threads = 1, optimize_on_insert = 0, insert_deduplicate = 0, insert_distributed_sync = 1;

-- The read view: the same columns and answers, from the two states. Counts are UInt64, as
-- uniqExact gave them.
CREATE VIEW IF NOT EXISTS {database}.trace_summary AS
SELECT
    trace_id,
    root.1 AS root_span_id,
    root.2 AS root_name,
    root.3 AS service_name,
    root.4 AS root_kind,
    root.5 AS status,
    toBool(has_root) AS has_root,
    start,
    end,
    (toUnixTimestamp64Nano(end) - toUnixTimestamp64Nano(start)) / 1e6 AS duration_ms,
    updated_at,
    agent_name,
    length(flags) AS spans,
    toUInt64(arrayCount(f -> bitTest(f, 1), mapValues(flags))) AS llm_calls,
    toUInt64(arrayCount(f -> bitTest(f, 2), mapValues(flags))) AS tool_calls,
    toUInt64(arrayCount(f -> bitTest(f, 0), mapValues(flags))) AS errors,
    toUInt64(arrayCount(f -> bitTest(f, 3), mapValues(flags))) AS tool_errors,
    arraySum(usage.2) AS input_tokens,
    arraySum(usage.3) AS output_tokens,
    if(llm_calls > 0 AND empty(arrayFilter(c -> c > -inf, usage.4) AS costs), NULL, arraySum(costs)) AS cost_usd,
    toUInt64(arrayCount(f -> bitTest(f, 4), mapValues(flags))) AS unpriced_calls,
    user_id,
    session_id,
    prompt_name,
    prompt_version,
    services
FROM
(
    SELECT
        t.trace_id AS trace_id,
        argMinMerge(t.root) AS root,
        max(t.has_root) AS has_root,
        min(t.start) AS start,
        max(t.end) AS end,
        max(t.updated_at) AS updated_at,
        argMinMerge(t.agent_name) AS agent_name,
        groupBitOrMapMerge(t.span_flags) AS flags,
        maxMapMerge(t.call_usage) AS usage,
        max(t.user_id) AS user_id,
        max(t.session_id) AS session_id,
        max(t.prompt_name) AS prompt_name,
        max(t.prompt_version) AS prompt_version,
        groupUniqArrayArray(t.services) AS services
    FROM {database}.trace_summaries AS t
    GROUP BY t.trace_id
);
