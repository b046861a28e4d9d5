"""Synthetic LLM traffic for the dashboard tests and benchmark, made by ClickHouse itself.

`INSERT ... SELECT FROM numbers(n)` writes millions of calls in seconds; every value is a hash of
the row number, so a run is reproducible and the same number gives the same span id in every
table (scores point at real calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from assay.collector.completed_runs import write_all_completed
from assay.collector.store.base import ClickHouseStore

SERVICES = ("checkout", "support-bot", "search", "summarizer", "agent")
# (model, provider); the last one has no price: its cost is NULL, as for an unknown model (and
# one call in 40 of any model reports no usage: unpriced too).
MODELS = (
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("claude-sonnet-4", "anthropic"),
    ("claude-haiku-4", "anthropic"),
    ("gemini-2.5-flash", "gcp.gemini"),
    ("llama-3.3-70b", "groq"),
)
PROMPTS = ("answer", "classify")
VERSIONS = ("v1", "v2", "v3")
ONLINE_EVALUATORS = ("relevance", "toxicity")
EXPERIMENTS = 6
ITEMS_PER_EXPERIMENT = 200


@dataclass(frozen=True)
class Seeded:
    calls: int
    start: datetime
    end: datetime


def _h(salt: str, number: str = "number") -> str:
    return f"cityHash64({number}, '{salt}')"


def _span_id(number: str) -> str:
    return f"lower(hex({_h('span', number)}))"


def _trace_id(number: str) -> str:
    return f"concat(lower(hex({_h('trace', number)})), lower(hex({_h('trace2', number)})))"


def _array(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def seed(store: ClickHouseStore, calls: int, end: datetime, hours: float) -> Seeded:
    """Insert `calls` LLM calls spread over the `hours` before `end`, with online, human and
    experiment scores and the experiments they belong to."""
    db = store.database
    span_s = int(hours * 3600)
    end_s = int(end.timestamp())
    models = _array(tuple(m for m, _ in MODELS))
    providers = _array(tuple(p for _, p in MODELS))
    # A user belongs to one service; each service uses three of the models and both prompts; the
    # model index picks the provider. A prompt version is deployed for two days, with a 10%
    # canary of the next one.
    user = f"{_h('user')} % 5000"
    model_index = f"1 + (({user}) % {len(SERVICES)} + {_h('model')} % 3) % {len(MODELS)}"
    phase = f"intDiv(toUnixTimestamp(timestamp) - {end_s - span_s}, 172800)"
    canary = f"if({_h('canary')} % 10 = 0, 1, 0)"
    call_columns = f"""
        fromUnixTimestamp64Nano(toInt64(({end_s} - {_h("time")} % {span_s}) * 1000000000
                                         + {_h("ns")} % 1000000000)) AS timestamp,
        {_trace_id("number")} AS trace_id,
        {_span_id("number")} AS span_id,
        '' AS parent_span_id,
        {_array(SERVICES)}[1 + ({user}) % {len(SERVICES)}] AS service_name,
        'chat' AS operation,
        {providers}[{model_index}] AS provider,
        {models}[{model_index}] AS request_model,
        request_model AS response_model,
        request_model AS model,
        if({_h("stream")} % 10 < 4, 1, 0) AS streamed,
        toUInt64(50 + {_h("in")} % 3000) AS input_tokens,
        toUInt64(10 + {_h("out")} % 800) AS output_tokens,
        toUInt64(input_tokens * ({_h("cache")} % 5) / 10) AS cached_input_tokens,
        toUInt64(if({_h("cache")} % 7 = 0, input_tokens / 4, 0)) AS cache_creation_input_tokens,
        toUInt64(if(model LIKE 'gpt-4o%', output_tokens / 3, 0)) AS reasoning_tokens,
        multiIf(model = 'llama-3.3-70b', 'unpriced_model', {_h("usage")} % 40 = 0, 'no_usage',
                'priced') AS cost_source,
        if(cost_source != 'priced', NULL,
           (input_tokens * 0.5 + output_tokens * 2.0) / 1e6 * (1 + {_h("price")} % 10)) AS cost_usd,
        150 + ({_h("lat")} % 1000) * ({_h("lat2")} % 1000) / 250.0 AS duration_ms,
        if(streamed = 1, 30 + {_h("ttft")} % 700, NULL) AS time_to_first_token_ms,
        if({_h("err")} % 50 = 0, 'error', 'ok') AS status,
        if(status = 'error', {_array(("RateLimitError", "APITimeoutError"))}[1 + {_h("et")} % 2],
           '') AS error_type,
        concat('u-', toString({user})) AS user_id,
        concat(user_id, '-', toString(intDiv(toUnixTimestamp(timestamp), 1800))) AS session_id,
        concat(service_name, '-', {_array(PROMPTS)}[1 + {_h("prompt")} % 2]) AS prompt_name,
        {_array(VERSIONS)}[1 + ({phase} + {canary}) % {len(VERSIONS)}] AS prompt_version,
        '[{{"role":"user","parts":[{{"type":"text","content":"hello"}}]}}]' AS input_messages,
        '[{{"role":"assistant","parts":[{{"type":"text","content":"hi"}}]}}]' AS output_messages
    """
    names = [
        "timestamp", "trace_id", "span_id", "parent_span_id", "service_name", "operation",
        "provider", "request_model", "response_model", "model", "streamed", "input_tokens",
        "output_tokens", "cached_input_tokens", "cache_creation_input_tokens",
        "reasoning_tokens", "cost_source", "cost_usd", "duration_ms", "time_to_first_token_ms",
        "status", "error_type", "user_id", "session_id", "prompt_name", "prompt_version",
        "input_messages", "output_messages",
    ]  # fmt: skip
    column_list = ", ".join(names)
    store.query(
        f"INSERT INTO {db}.llm_calls ({column_list}) SELECT {column_list} FROM "
        f"(SELECT number, {call_columns} FROM numbers({calls}))",
        settings={"max_insert_block_size": 1_048_576},
    )
    _seed_scores(store, calls)
    _seed_experiments(store, end_s)
    start = datetime.fromtimestamp(end_s - span_s, tz=timezone.utc)
    return Seeded(calls, start, datetime.fromtimestamp(end_s, tz=timezone.utc))


def _seed_scores(store: ClickHouseStore, calls: int) -> None:
    """Online evaluators score one call in 20; people grade one in five of those with 👍/👎."""
    db = store.database
    # A score is written a few seconds after its call; the call's timestamp is recomputed from
    # the same hash, so scores are read from the calls themselves.
    store.query(
        f"""INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, label, passed,
                                     source, evaluator_version, author)
        SELECT timestamp + toIntervalSecond(5), trace_id, span_id, evaluator,
               value, if(value >= 0.5, 'pass', 'fail'), value >= 0.5, 'online', '1', ''
        FROM (
            SELECT timestamp, trace_id, span_id, model, prompt_version,
                   arrayJoin({_array(ONLINE_EVALUATORS)}) AS evaluator
            FROM {db}.llm_calls
            WHERE cityHash64(span_id, 'sampled') % 20 = 0 AND experiment_id = ''
        )
        ARRAY JOIN [least(1.0, (cityHash64(span_id, evaluator) % 1000) / 1000.0
                    + if(model LIKE 'gpt-4o%', 0.15, 0) + if(prompt_version = 'v3', 0.1, 0))]
                   AS value"""
    )
    store.query(
        f"""INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, label, passed,
                                     source, author)
        SELECT timestamp + toIntervalSecond(60), trace_id, span_id, 'thumbs',
               if(cityHash64(span_id, 'thumb') % 4 = 0, 0, 1) AS value,
               if(value = 1, 'up', 'down'), value = 1, 'human',
               concat('reviewer-', toString(cityHash64(span_id, 'who') % 5))
        FROM {db}.llm_calls
        WHERE cityHash64(span_id, 'sampled') % 20 = 0 AND cityHash64(span_id, 'graded') % 5 = 0
          AND experiment_id = ''"""
    )


def _seed_experiments(store: ClickHouseStore, end_s: int) -> None:
    """A few experiment runs over a golden dataset: their calls, scores and summary rows."""
    db = store.database
    items = ITEMS_PER_EXPERIMENT
    total = EXPERIMENTS * items
    # Experiment e runs (EXPERIMENTS - e) * 3 hours before the end, on prompt version
    # v(1 + e % 3): all of them inside the last day, so a day's range can compare two.
    store.query(
        f"""INSERT INTO {db}.experiments (experiment_id, name, dataset_name, dataset_version,
                                          params, evaluators, started_at, ended_at, status,
                                          item_count, summary)
        SELECT concat('exp-', toString(number)),
               concat('answer-', {_array(VERSIONS)}[1 + number % 3]),
               'golden-answers', 'v1', '{{}}', map('relevance', '1', 'toxicity', '1'),
               fromUnixTimestamp64Milli(toInt64(({end_s} - ({EXPERIMENTS} - number) * 10800)
                                                * 1000)) AS started,
               started + toIntervalMinute(3), 'completed', {items}, '{{}}'
        FROM numbers({EXPERIMENTS})"""
    )
    store.query(
        f"""INSERT INTO {db}.llm_calls (timestamp, trace_id, span_id, service_name, operation,
                                        provider, request_model, response_model, model,
                                        input_tokens, output_tokens, cost_usd, duration_ms,
                                        status, prompt_name, prompt_version, experiment_id,
                                        dataset_item_id)
        SELECT e.started_at + toIntervalMillisecond(item * 500), {_trace_id("n")},
               {_span_id("n")}, 'notebook', 'chat', 'openai', 'gpt-4o-mini', 'gpt-4o-mini',
               'gpt-4o-mini', 400, 120, 0.0002, 800 + item, 'ok', 'notebook-answer',
               {_array(VERSIONS)}[1 + exp_no % 3], e.experiment_id,
               concat('item-', toString(item))
        FROM (SELECT number + 1000000000000 AS n, intDiv(number, {items}) AS exp_no,
                     number % {items} AS item FROM numbers({total})) AS g
        JOIN {db}.experiments AS e ON e.experiment_id = concat('exp-', toString(g.exp_no))"""
    )
    store.query(
        f"""INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, label, passed,
                                     source, evaluator_version, experiment_id, dataset_item_id)
        SELECT timestamp + toIntervalSecond(2), trace_id, span_id, evaluator,
               least(1.0, (cityHash64(span_id, evaluator) % 1000) / 1000.0
                     + 0.1 * (toUInt8(substring(prompt_version, 2)) - 1)) AS value,
               if(value >= 0.5, 'pass', 'fail'), value >= 0.5, 'experiment', '1',
               experiment_id, dataset_item_id
        FROM {db}.llm_calls
        ARRAY JOIN {_array(ONLINE_EVALUATORS)} AS evaluator
        WHERE experiment_id != '' AND prompt_name = 'notebook-answer'"""  # the calls seeded above
    )


COLLECTORS = ("collector-1", "collector-2")
STATS_EVERY_S = 5


def seed_collector_stats(store: ClickHouseStore, end: datetime, hours: float) -> None:
    """`collector_stats` rows of two collectors, one every 5 s each, over the `hours` before
    `end`, as collector/monitoring.py writes them."""
    end_s = int(end.timestamp())
    rows = int(hours * 3600) // STATS_EVERY_S
    started_ns = (end_s - int(hours * 3600)) * 1_000_000_000
    store.command(
        f"""
        INSERT INTO {store.database}.collector_stats
        SELECT
            fromUnixTimestamp64Nano(toInt64(({end_s} - intDiv(number, 2) * {STATS_EVERY_S})
                                            * 1000000000)) AS timestamp,
            {_array(COLLECTORS)}[1 + number % 2] AS instance,
            concat('host-', toString(1 + number % 2)) AS host,
            '0.1.0' AS version,
            fromUnixTimestamp64Nano(toInt64({started_ns})) AS started_at,
            {STATS_EVERY_S} AS interval_s,
            if({_h("status")} % 50 = 0, 'degraded', 'ok') AS status,
            status = 'ok' AS store_reachable,
            10 + {_h("accepted")} % 20 AS requests_accepted,
            {_h("refused")} % 3 AS requests_refused,
            map('overloaded', {_h("over")} % 2, 'invalid', {_h("invalid")} % 2) AS refused,
            requests_accepted * 40 AS spans_received,
            0 AS logs_received,
            spans_received AS spans_written,
            intDiv(spans_received, 2) AS llm_calls_written,
            0 AS logs_written,
            1 + {_h("writes")} % 3 AS writes,
            if({_h("fail")} % 100 = 0, 1, 0) AS write_failures,
            map('llm_calls', if({_h("dedup")} % 500 = 0, 3, 0)) AS deduplicated,
            20 + {_h("ms")} % 80 AS write_ms_avg,
            write_ms_avg * 2 AS write_ms_max,
            {_h("spool")} % 8000000 AS spool_bytes,
            1 + {_h("segments")} % 3 AS spool_segments,
            ({_h("age")} % 500) / 100 AS spool_oldest_age_s,
            spans_received AS evaluations,
            0 AS evaluation_failures,
            if({_h("drop")} % 20 = 0, 5, 0) AS evaluation_drops,
            {_h("queue")} % 300 AS evaluation_queue,
            0 AS deadlettered_batches,
            0 AS deadlettered_rows,
            0 AS deadletter_entries
        FROM numbers({rows * len(COLLECTORS)})
        """
    )


AGENT_SERVICES = ("support-agent", "research-agent")
AGENTS = ("triage", "researcher", "writer")
TOOLS = ("search", "fetch_url", "calculator", "send_email")
RUN_EVALUATORS = ("no_tool_errors", "goal_completion")


def seed_agent_runs(store: ClickHouseStore, runs: int, end: datetime, hours: float) -> None:
    """`runs` agent runs over the `hours` before `end`, as the collector stores them: per run a
    root agent span, 1-5 LLM calls and 0-3 tool calls in `trace_spans` (which fills
    `trace_summaries`), the tool calls in `tool_calls` (fetch_url fails one call in four, the
    others one in 20), two online run-level scores on one run in five, and every run in
    `completed_runs`."""
    db = store.database
    end_s = int(end.timestamp())
    span_s = int(hours * 3600)
    run = f"""
        SELECT number AS run, {_trace_id("number")} AS trace_id,
               fromUnixTimestamp64Milli(toInt64(({end_s} - 600 - {_h("rt")} % {span_s})
                                                * 1000)) AS run_start,
               {_array(AGENT_SERVICES)}[1 + {_h("svc")} % 2] AS service_name,
               {_array(AGENTS)}[1 + {_h("agent")} % 3] AS agent_name,
               1 + {_h("llm")} % 5 AS llm_steps, {_h("tools")} % 4 AS tool_steps,
               concat('u-', toString({_h("user")} % 500)) AS user_id,
               concat(user_id, '-', toString(intDiv(toUnixTimestamp(run_start), 1800)))
                   AS session_id
        FROM numbers({runs})"""
    steps = f"""
        SELECT r.*, step, step <= llm_steps AS llm,
               concat(trace_id, '-', toString(step)) AS span_id,
               run_start + toIntervalMillisecond(step * 700) AS start,
               if(llm, 300 + cityHash64(span_id, 'lat') % 2000,
                  50 + cityHash64(span_id, 'lat') % 800) AS duration_ms,
               {_array(TOOLS)}[1 + cityHash64(span_id, 'tool') % {len(TOOLS)}] AS tool,
               if(NOT llm AND cityHash64(span_id, 'err') % if(tool = 'fetch_url', 4, 20) = 0,
                  'error', 'ok') AS status
        FROM ({run}) AS r
        ARRAY JOIN range(1, toUInt32(llm_steps + tool_steps + 1)) AS step"""
    spans = """(trace_id, span_id, parent_span_id, start, end, service_name, span_name, kind,
                status, dialect, agent_name, tool_name, llm, input_tokens, output_tokens,
                cost_usd, user_id, session_id, prompt_name, prompt_version)"""
    store.query(
        f"""INSERT INTO {db}.trace_spans {spans}
        SELECT trace_id, concat(trace_id, '-0'), '', run_start,
               run_start + toIntervalMillisecond((llm_steps + tool_steps + 1) * 700),
               service_name, concat('invoke_agent ', agent_name), 'agent',
               if({_h("fail", "run")} % 25 = 0, 'error', 'ok'), 'genai', agent_name, '', false,
               NULL, NULL, NULL, user_id, session_id, 'agent-plan', 'v1'
        FROM ({run})"""
    )
    store.query(
        f"""INSERT INTO {db}.trace_spans {spans}
        SELECT trace_id, span_id, concat(trace_id, '-0'), start,
               start + toIntervalMillisecond(duration_ms), service_name,
               if(llm, 'chat gpt-4o-mini', concat('execute_tool ', tool)),
               if(llm, 'llm', 'tool'), status, 'genai', agent_name, if(llm, '', tool), llm,
               if(llm, toUInt64(200 + cityHash64(span_id, 'in') % 3000), NULL),
               if(llm, toUInt64(20 + cityHash64(span_id, 'out') % 500), NULL),
               if(llm, (200 + cityHash64(span_id, 'in') % 3000) * 0.15e-6
                       + (20 + cityHash64(span_id, 'out') % 500) * 0.6e-6, NULL),
               user_id, session_id, if(llm, 'agent-plan', ''), if(llm, 'v1', '')
        FROM ({steps})""",
        settings={"max_insert_block_size": 1_048_576},
    )
    store.query(
        f"""INSERT INTO {db}.tool_calls (timestamp, trace_id, span_id, parent_span_id,
                service_name, tool_name, tool_call_id, tool_type, agent_name, arguments, result,
                status, error_type, duration_ms, user_id, session_id, dialect)
        SELECT start, trace_id, span_id, concat(trace_id, '-0'), service_name, tool,
               concat('call-', span_id), 'function', agent_name, '{{"q": "x"}}', '"ok"', status,
               if(status = 'error', 'TimeoutError', ''), duration_ms, user_id, session_id, 'genai'
        FROM ({steps}) WHERE NOT llm"""
    )
    store.query(
        f"""INSERT INTO {db}.scores (timestamp, trace_id, span_id, name, value, label, passed,
                                     source, evaluator_version, level, session_id)
        SELECT run_start + toIntervalSecond(60), trace_id, '', evaluator,
               (cityHash64(trace_id, evaluator) % 1000) / 1000.0 AS value,
               if(value >= 0.5, 'pass', 'fail'), value >= 0.5, 'online', '1', 'trace', session_id
        FROM ({run}) ARRAY JOIN {_array(RUN_EVALUATORS)} AS evaluator
        WHERE cityHash64(trace_id, 'judged') % 5 = 0"""
    )
    write_all_completed(store)  # what the collector's completed-runs thread writes
