-- Agent runs (issue #19): every span in one vocabulary, tool calls as rows, a summary of every
-- trace kept current as its spans arrive, and scores of whole runs (traces) and sessions beside
-- those of single calls. Names and columns here are what pages and dashboards read.

-- One row per span, whatever dialect it came in: its kind in one vocabulary (span_kinds.py:
-- workflow, agent, chain, llm, embedding, tool, retriever, reranker, guardrail, evaluator,
-- span), its agent, and its LLM call's tokens and cost. Ordered by trace: a trace's spans are
-- one range read. `status` is error when the span says so (OTel status or error.type), else ok.
-- Replacing on the span id, like otel_traces.
CREATE TABLE IF NOT EXISTS {database}.trace_spans
(
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    start DateTime64(9) CODEC(Delta, ZSTD(1)),
    end DateTime64(9) CODEC(Delta, ZSTD(1)),
    service_name LowCardinality(String),
    span_name LowCardinality(String),
    kind LowCardinality(String),
    status LowCardinality(String),
    dialect LowCardinality(String),
    agent_name LowCardinality(String),
    tool_name LowCardinality(String),
    llm Bool,
    input_tokens Nullable(UInt64),
    output_tokens Nullable(UInt64),
    cost_usd Nullable(Float64),
    user_id String,
    session_id String,
    prompt_name LowCardinality(String),
    prompt_version LowCardinality(String),
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(start)
ORDER BY (trace_id, span_id)
TTL toDateTime(start) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- One row per tool call: a span that executed a tool (GenAI `execute_tool`, OpenInference TOOL,
-- OpenLLMetry `tool`), whatever the dialect. `arguments` and `result` are the span's content,
-- redacted like messages (JSON text when the span carried JSON); `status` is ok | error; the
-- agent is the span's own or, when it names none, the nearest agent above it in its batch.
CREATE TABLE IF NOT EXISTS {database}.tool_calls
(
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    service_name LowCardinality(String),
    tool_name LowCardinality(String),
    tool_call_id String CODEC(ZSTD(1)),
    tool_type LowCardinality(String),
    agent_name LowCardinality(String),
    arguments String CODEC(ZSTD(3)),
    result String CODEC(ZSTD(3)),
    status LowCardinality(String),
    error_type LowCardinality(String),
    error_message String CODEC(ZSTD(1)),
    duration_ms Float64,
    user_id String,
    session_id String,
    dialect LowCardinality(String),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, tool_name, timestamp, span_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- A summary per trace, in partial rows (one per trace, hour and insert) that ClickHouse merges
-- in the background and a query merges with GROUP BY trace_id (the trace_summary view does).
-- Every aggregate is idempotent per span, so spans in any order, late spans and a span a client
-- sent twice all give the same summary: counts count distinct span ids, tokens and cost are
-- kept per LLM call's span id (maxMap) and summed when read, the root is the earliest span
-- without a parent (the earliest span while none has arrived). `updated_at` is when the store
-- last received a span of the trace (the store's clock), which says when a run went quiet.
CREATE TABLE IF NOT EXISTS {database}.trace_summaries
(
    hour DateTime CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    start SimpleAggregateFunction(min, DateTime64(9)),
    end SimpleAggregateFunction(max, DateTime64(9)),
    updated_at SimpleAggregateFunction(max, DateTime64(3)),
    has_root SimpleAggregateFunction(max, UInt8),
    root AggregateFunction(argMin, Tuple(String, String, String, String, String), Tuple(UInt8, DateTime64(9))),
    agent_name AggregateFunction(argMin, String, Tuple(UInt8, DateTime64(9))),
    spans AggregateFunction(uniqExact, UInt64),
    errors AggregateFunction(uniqExactIf, UInt64, UInt8),
    llm_calls AggregateFunction(uniqExactIf, UInt64, UInt8),
    tool_calls AggregateFunction(uniqExactIf, UInt64, UInt8),
    tool_errors AggregateFunction(uniqExactIf, UInt64, UInt8),
    unpriced_calls AggregateFunction(uniqExactIf, UInt64, UInt8),
    input_tokens AggregateFunction(maxMap, Array(UInt64), Array(UInt64)),
    output_tokens AggregateFunction(maxMap, Array(UInt64), Array(UInt64)),
    cost_usd AggregateFunction(maxMap, Array(UInt64), Array(Float64)),
    user_id SimpleAggregateFunction(max, String),
    session_id SimpleAggregateFunction(max, String),
    prompt_name SimpleAggregateFunction(max, String),
    prompt_version SimpleAggregateFunction(max, String),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_updated_at updated_at TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(hour)
ORDER BY (hour, trace_id)
TTL hour + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.trace_summaries_mv
TO {database}.trace_summaries
AS SELECT
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
    uniqExactState(cityHash64(s.span_id)) AS spans,
    uniqExactIfState(cityHash64(s.span_id), toUInt8(s.status = 'error')) AS errors,
    uniqExactIfState(cityHash64(s.span_id), toUInt8(s.llm)) AS llm_calls,
    uniqExactIfState(cityHash64(s.span_id), toUInt8(s.kind = 'tool')) AS tool_calls,
    uniqExactIfState(cityHash64(s.span_id), toUInt8(s.kind = 'tool' AND s.status = 'error')) AS tool_errors,
    uniqExactIfState(cityHash64(s.span_id), toUInt8(s.llm AND s.cost_usd IS NULL)) AS unpriced_calls,
    maxMapState(
        if(s.input_tokens IS NULL, [], [cityHash64(s.span_id)]),
        if(s.input_tokens IS NULL, [], [assumeNotNull(s.input_tokens)])
    ) AS input_tokens,
    maxMapState(
        if(s.output_tokens IS NULL, [], [cityHash64(s.span_id)]),
        if(s.output_tokens IS NULL, [], [assumeNotNull(s.output_tokens)])
    ) AS output_tokens,
    maxMapState(
        if(s.cost_usd IS NULL, [], [cityHash64(s.span_id)]),
        if(s.cost_usd IS NULL, [], [assumeNotNull(s.cost_usd)])
    ) AS cost_usd,
    max(s.user_id) AS user_id,
    max(s.session_id) AS session_id,
    max(toString(s.prompt_name)) AS prompt_name,
    max(toString(s.prompt_version)) AS prompt_version,
    groupUniqArray(toString(s.service_name)) AS services
FROM {database}.trace_spans AS s
WHERE s.trace_id != ''
GROUP BY hour, trace_id;

-- One row per trace, the partial rows merged: what people and pages read. `status` is the
-- root's (a tool that failed inside a run that recovered is counted in `errors`, not here);
-- `cost_usd` is NULL when the trace has LLM calls and none of them could be priced, and a
-- lower bound when `unpriced_calls` > 0. Filter on `trace_id` (a filter on another column reads
-- every trace): for a time range, pick the trace ids from trace_summaries by `hour` first.
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
    spans,
    llm_calls,
    tool_calls,
    errors,
    tool_errors,
    arraySum(input_tokens_by_call.2) AS input_tokens,
    arraySum(output_tokens_by_call.2) AS output_tokens,
    if(llm_calls > 0 AND empty(cost_by_call.1), NULL, arraySum(cost_by_call.2)) AS cost_usd,
    unpriced_calls,
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
        uniqExactMerge(t.spans) AS spans,
        uniqExactIfMerge(t.llm_calls) AS llm_calls,
        uniqExactIfMerge(t.tool_calls) AS tool_calls,
        uniqExactIfMerge(t.errors) AS errors,
        uniqExactIfMerge(t.tool_errors) AS tool_errors,
        maxMapMerge(t.input_tokens) AS input_tokens_by_call,
        maxMapMerge(t.output_tokens) AS output_tokens_by_call,
        maxMapMerge(t.cost_usd) AS cost_by_call,
        uniqExactIfMerge(t.unpriced_calls) AS unpriced_calls,
        max(t.user_id) AS user_id,
        max(t.session_id) AS session_id,
        max(t.prompt_name) AS prompt_name,
        max(t.prompt_version) AS prompt_version,
        groupUniqArrayArray(t.services) AS services
    FROM {database}.trace_summaries AS t
    GROUP BY t.trace_id
);

-- Scores of whole runs and conversations: `level` is call (a score of one LLM call, as before),
-- trace (of a run: span_id is empty) or session (of a conversation: span_id and trace_id are
-- empty). Scores carry the session they judge, which joins the replacing key: a run judged
-- again replaces its score (the newest row wins; readers take argMax per grader).
ALTER TABLE {database}.scores ADD COLUMN IF NOT EXISTS level LowCardinality(String) DEFAULT 'call', ADD COLUMN IF NOT EXISTS session_id String, MODIFY ORDER BY (source, name, trace_id, span_id, author, experiment_id, dataset_item_id, session_id);
