"""The "LLM monitoring" dashboard: traffic, latency, errors, cost and tokens of every call, in
rows under a line of headline figures coloured by their budgets."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from assay.collector.grafana.budgets import Budget
from assay.collector.grafana.dashboard import TRACE_LINKS, calls_page, new_dashboard
from assay.collector.grafana.panels import (
    any_is_bad,
    budget_steps,
    stat_value,
    table_of,
    time_series,
)
from assay.collector.grafana.sql import (
    AVERAGE_COST,
    CACHE_HIT_RATIO,
    CALL_VARIABLES,
    DATABASE,
    ERROR_RATE,
    LATENCY,
    MODEL,
    PRICED_COST,
    PROMPT_NAME,
    PROMPT_VERSION,
    PROVIDER,
    RATE_LIMITED,
    SERVICE,
    TTFT,
    any_in_set,
    call_filters,
    calls_in_range,
    days_in_range,
    rollup,
    top_by_cost,
    traffic_filter,
)
from assay.collector.normalize.cost import UNPRICED_CALLS

SUMS = "calls, errors, input_tokens, output_tokens, cost_usd, unpriced_calls"
TOKEN_CLASSES = "cached_input_tokens, cache_creation_input_tokens, reasoning_tokens"
# Counts money and tokens with the dimensions the tables show. The tables name their count of
# calls `call_count`: an alias `calls` would be read inside PRICED_COST's sum(calls).
CALL_UNITS = {
    "call_count": "short",
    "errors": "short",
    "tokens": "short",
    "cost_usd": "currencyUSD",
    "unpriced": "short",
}


# What the per-user and per-session tables (llm_users_1d, llm_sessions_1d) cannot say, nor the
# UI's sessions pages (trace_summary): which unpriced calls failed. Counting them there takes a
# column in three rollups; the calls page a row links to says it, as the UI's session page does.
_NO_FAILED_SPLIT = (
    "The unpriced count includes failed calls (rarely billed), which this table does not tell "
    "apart: so it calls no cost a lower bound; the calls page the row opens says how many failed "
    "and whether the cost is one."
)


def _users() -> str:
    return f"{DATABASE}.llm_users_1d\nWHERE {days_in_range()}\n  AND {call_filters()}"


def _sessions() -> str:
    matches = [
        any_in_set(variable, column)
        for variable, column in (
            (SERVICE, "services"),
            (MODEL, "models"),
            (PROVIDER, "providers"),
            (PROMPT_NAME, "prompt_names"),
            (PROMPT_VERSION, "prompt_versions"),
        )
    ]
    return f"{DATABASE}.llm_sessions_1d\nWHERE {days_in_range()}\n  AND " + "\n  AND ".join(
        [*matches, traffic_filter()]
    )


def _errors() -> str:
    return f"{DATABASE}.llm_errors\nWHERE {calls_in_range()}"


def _overview(dash: Dashboard, budgets: dict[str, Budget]) -> Dashboard:
    totals = rollup(f"{SUMS}, failed_unpriced_calls, {TOKEN_CLASSES}, duration_ms")
    today = (
        f"{DATABASE}.llm_calls_1h\nWHERE minute >= toStartOfDay($__toTime) AND minute <= $__toTime"
        f"\n  AND {call_filters()}"
    )
    return (
        dash.with_row(Row("Overview"))
        .with_panel(
            stat_value(
                "Calls",
                f"SELECT sum(calls) AS calls FROM {totals}",
                "short",
                "LLM calls in the time range.",
            )
        )
        .with_panel(
            stat_value(
                "Error rate",
                f"SELECT {ERROR_RATE} AS error_rate FROM {totals}",
                "percentunit",
                "Share of calls that ended in an error; orange from half the error-rate budget, "
                "red from the budget.",
                budget_steps(budgets["error_rate"]),
            )
        )
        .with_panel(
            stat_value(
                "p95 latency",
                f"SELECT {LATENCY}[2] AS p95_ms FROM {totals}",
                "ms",
                "95th percentile of call duration over the range, against the latency budget.",
                budget_steps(budgets["latency_p95_ms"]),
            )
        )
        .with_panel(
            stat_value(
                "Cost",
                f"SELECT sum(cost_usd) AS cost_usd FROM {totals}",
                "currencyUSD",
                "Cost of the priced calls in the range.",
            )
        )
        .with_panel(
            stat_value(
                "Cost today",
                f"SELECT sum(cost_usd) AS cost_usd FROM {today}",
                "currencyUSD",
                "Cost of the selected calls since midnight (UTC) of the range's last day, "
                "against the daily budget.",
                budget_steps(budgets["daily_cost_usd"]),
            )
        )
        .with_panel(
            stat_value(
                "Average cost per call",
                f"SELECT {AVERAGE_COST} AS cost_per_call FROM {totals}",
                "currencyUSD",
                "Cost of the priced calls divided by their number (unpriced calls left out).",
            )
        )
        .with_panel(
            stat_value(
                "Cache-hit ratio",
                f"SELECT {CACHE_HIT_RATIO} AS cache_hit_ratio FROM {totals}",
                "percentunit",
                "Share of input tokens read from the provider's prompt cache.",
            )
        )
        .with_panel(
            stat_value(
                "Unpriced calls",
                "SELECT sum(unpriced_calls) AS unpriced_calls,\n"
                f"  sum(failed_unpriced_calls) AS of_them_failed FROM {totals}",
                "short",
                "Calls without a cost: their model has no price, the provider reported no usage, "
                "or the call failed (see Unpriced calls by reason), and how many of them failed "
                "(rarely billed). Their cost is unknown (NULL), not 0: with an unpriced call that "
                "did not fail, the Cost beside is a lower bound, as the calls page says.",
                any_is_bad("orange"),
            )
        )
    )


def _traffic(dash: Dashboard) -> Dashboard:
    by_service = rollup(f"service_name, {SUMS}")
    by_model = rollup(f"model, {SUMS}")
    return (
        dash.with_row(Row("Traffic"))
        .with_panel(
            time_series(
                "Calls per second by service",
                "SELECT time, service_name, sum(calls) / any(step_s) AS calls_per_s\n"
                f"FROM {by_service}\nGROUP BY time, service_name ORDER BY time",
                "reqps",
                "Calls per second, by service.",
            )
        )
        .with_panel(
            time_series(
                "Calls per second by model",
                "SELECT time, model, sum(calls) / any(step_s) AS calls_per_s\n"
                f"FROM {by_model}\nGROUP BY time, model ORDER BY time",
                "reqps",
                "Calls per second, by model (the response's model, else the requested one).",
            )
        )
    )


def _latency(dash: Dashboard, budgets: dict[str, Budget]) -> Dashboard:
    minutes = rollup("duration_ms, time_to_first_token_ms")
    by_model = rollup("model, duration_ms, time_to_first_token_ms")
    by_provider = rollup("provider, duration_ms")
    both = rollup("model, provider, calls, duration_ms, time_to_first_token_ms")
    return (
        dash.with_row(Row("Latency"))
        .with_panel(
            time_series(
                "Latency p50 / p95 / p99",
                f"WITH {LATENCY} AS q\n"
                "SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99\n"
                f"FROM {minutes}\nGROUP BY time ORDER BY time",
                "ms",
                "Call duration percentiles (t-digest over the per-minute rollup); the dashed "
                "line is the latency budget.",
                budget=budgets["latency_p95_ms"],
            )
        )
        .with_panel(
            time_series(
                "Time to first token p50 / p95 / p99",
                f"WITH {TTFT} AS q\n"
                "SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99\n"
                f"FROM {minutes}\nGROUP BY time ORDER BY time",
                "ms",
                "Time to the first streamed chunk; streamed calls only.",
            )
        )
        .with_panel(
            time_series(
                "p95 latency by model",
                f"SELECT time, model, {LATENCY}[2] AS p95_ms\n"
                f"FROM {by_model}\nGROUP BY time, model ORDER BY time",
                "ms",
                "95th percentile of call duration per model; the dashed line is the latency "
                "budget the alert rule holds each model to.",
                budget=budgets["latency_p95_ms"],
            )
        )
        .with_panel(
            time_series(
                "p95 latency by provider",
                f"SELECT time, provider, {LATENCY}[2] AS p95_ms\n"
                f"FROM {by_provider}\nGROUP BY time, provider ORDER BY time",
                "ms",
                "95th percentile of call duration per provider.",
                budget=budgets["latency_p95_ms"],
            )
        )
        .with_panel(
            time_series(
                "Time to first token p95 by model",
                f"SELECT time, model, {TTFT}[2] AS ttft_p95_ms\n"
                f"FROM {by_model}\nGROUP BY time, model HAVING ttft_p95_ms > 0 ORDER BY time",
                "ms",
                "95th percentile of the time to the first streamed chunk, per model (models "
                "that streamed).",
            )
        )
        .with_panel(
            table_of(
                "Latency by model and provider",
                f"SELECT model, provider, sum(calls) AS calls,\n"
                f"  {LATENCY}[1] AS p50_ms, {LATENCY}[2] AS p95_ms, {LATENCY}[3] AS p99_ms,\n"
                f"  {TTFT}[1] AS ttft_p50_ms, {TTFT}[2] AS ttft_p95_ms\n"
                f"FROM {both}\nGROUP BY model, provider ORDER BY p95_ms DESC",
                "Duration and time-to-first-token percentiles over the range; a model opens its "
                "calls in Assay.",
                {
                    "calls": "short",
                    **dict.fromkeys(
                        ("p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms"), "ms"
                    ),
                },
                links={
                    "model": ("Calls of this model", calls_page(model="${__data.fields.model}"))
                },
            )
        )
        .with_panel(
            table_of(
                "Slowest calls",
                "SELECT timestamp, service_name, model, duration_ms, time_to_first_token_ms,\n"
                "  input_tokens, output_tokens, cost_usd, status, trace_id, span_id\n"
                f"FROM {DATABASE}.llm_calls\nWHERE {calls_in_range()}\n"
                "ORDER BY duration_ms DESC LIMIT 20",
                "The longest calls of the range; trace_id opens the trace view, span_id the call "
                "in Assay.",
                {
                    "duration_ms": "ms",
                    "time_to_first_token_ms": "ms",
                    "input_tokens": "short",
                    "output_tokens": "short",
                    "cost_usd": "currencyUSD",
                },
                links=TRACE_LINKS,
            )
        )
    )


def _errors_row(dash: Dashboard, budgets: dict[str, Budget]) -> Dashboard:
    by_service = rollup(f"service_name, {SUMS}")
    errors = _errors()
    per_5_min = "count() / ($__interval_s / 300)"
    return (
        dash.with_row(Row("Errors"))
        .with_panel(
            time_series(
                "Error rate by service",
                f"SELECT time, service_name, {ERROR_RATE} AS error_rate\n"
                f"FROM {by_service}\nGROUP BY time, service_name ORDER BY time",
                "percentunit",
                "Share of calls that ended in an error, by service; the dashed line is the "
                "error-rate budget.",
                budget=budgets["error_rate"],
            )
        )
        .with_panel(
            time_series(
                "Errors by class and provider",
                "SELECT $__timeInterval(timestamp) AS time,\n"
                "  concat(error_class, ' · ', provider) AS class_provider, count() AS errors\n"
                f"FROM {errors}\nGROUP BY time, class_provider ORDER BY time",
                "short",
                "Failed calls per interval by class (rate_limit, timeout, server_error, "
                "connection, auth, bad_request, other) and provider.",
                bars=True,
            )
        )
        .with_panel(
            time_series(
                "Rate-limited calls by provider",
                f"SELECT $__timeInterval(timestamp) AS time, provider, {per_5_min} AS per_5_min\n"
                f"FROM {errors}\n  AND {RATE_LIMITED}\nGROUP BY time, provider ORDER BY time",
                "short",
                "Calls refused for a rate limit (HTTP 429, throttling, quota), per 5 minutes, by "
                "provider; the dashed line is the burst the alert rule tolerates.",
                min_interval="5m",
                budget=budgets["rate_limited_calls"],
            )
        )
        .with_panel(
            table_of(
                "Errors by type",
                "SELECT service_name, provider, error_class, error_type, count() AS errors,\n"
                "  max(timestamp) AS last_seen\n"
                f"FROM {errors}\n"
                "GROUP BY service_name, provider, error_class, error_type\n"
                "ORDER BY errors DESC LIMIT 50",
                "Every kind of failure of the range; a service opens its failed calls in Assay.",
                {"errors": "short"},
                links={
                    "service_name": (
                        "Failed calls of this service",
                        calls_page(service="${__data.fields.service_name}", status="error"),
                    )
                },
            )
        )
        .with_panel(
            table_of(
                "Recent errors",
                "SELECT timestamp, service_name, model, error_class, error_type, error_message,\n"
                "  duration_ms, trace_id, span_id\n"
                f"FROM {errors}\nORDER BY timestamp DESC LIMIT 50",
                "The latest failed calls; trace_id opens the trace view, span_id the call in "
                "Assay.",
                {"duration_ms": "ms"},
                links=TRACE_LINKS,
                width=24,
            )
        )
    )


def _cost(dash: Dashboard) -> Dashboard:
    hours = rollup(f"minute, model, service_name, provider, {SUMS}", hourly_when="1=1")
    by_model = rollup(f"model, {SUMS}")
    prompts = rollup(f"prompt_name, prompt_version, {SUMS}, failed_unpriced_calls")
    reasons = rollup("unpriced_calls, unpriced_model_calls, no_usage_calls, failed_unpriced_calls")
    users = _users()
    return (
        dash.with_row(Row("Cost"))
        .with_panel(
            time_series(
                "Cost per hour by model",
                f"SELECT toStartOfHour(minute) AS time, model, {PRICED_COST} AS cost_usd\n"
                f"FROM {hours}\nGROUP BY time, model ORDER BY time",
                "currencyUSD",
                "Cost of each hour, stacked by model (none for a model no call of which could be "
                "priced: unknown, not $0).",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            time_series(
                "Cost per hour by provider",
                f"SELECT toStartOfHour(minute) AS time, provider, {PRICED_COST} AS cost_usd\n"
                f"FROM {hours}\nGROUP BY time, provider ORDER BY time",
                "currencyUSD",
                "Cost of each hour, stacked by provider.",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            time_series(
                "Cost per day by service",
                f"SELECT toStartOfDay(minute) AS time, service_name, {PRICED_COST} AS cost_usd\n"
                f"FROM {hours}\nGROUP BY time, service_name ORDER BY time",
                "currencyUSD",
                "Cost of each day, stacked by service.",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            time_series(
                "Average cost per call by model",
                f"SELECT time, model, {AVERAGE_COST} AS cost_per_call\n"
                f"FROM {by_model}\nGROUP BY time, model HAVING sum(calls) > sum(unpriced_calls)\n"
                "ORDER BY time",
                "currencyUSD",
                "Cost of the priced calls of each model divided by their number.",
            )
        )
        .with_panel(
            table_of(
                "Cost by prompt version",
                # aliases unlike the rollup's columns, which AVERAGE_COST sums
                "SELECT prompt_name, prompt_version, sum(calls) AS prompt_calls,\n"
                f"  {PRICED_COST} AS total_cost_usd, {AVERAGE_COST} AS cost_per_call,\n"
                "  sum(unpriced_calls) AS unpriced, sum(failed_unpriced_calls) AS unpriced_failed\n"
                f"FROM {prompts}\nGROUP BY prompt_name, prompt_version "
                "ORDER BY total_cost_usd DESC",
                "What each prompt version cost in the range, in total and per priced call, its "
                f"unpriced calls ({UNPRICED_CALLS}) and how many of those failed: with more "
                "unpriced than failed, the cost is a lower bound. No cost for a version none of "
                "whose calls could be priced (unknown, not $0). A version opens its calls in "
                "Assay.",
                {
                    "prompt_calls": "short",
                    "total_cost_usd": "currencyUSD",
                    "cost_per_call": "currencyUSD",
                    "unpriced": "short",
                    "unpriced_failed": "short",
                },
                links={
                    "prompt_version": (
                        "Calls of this prompt version",
                        calls_page(
                            prompt_name="${__data.fields.prompt_name}",
                            prompt_version="${__data.fields.prompt_version}",
                        ),
                    )
                },
            )
        )
        .with_panel(
            time_series(
                "Unpriced calls by reason",
                "SELECT time, sum(unpriced_model_calls) AS unpriced_model,\n"
                "  sum(no_usage_calls) AS no_usage, sum(failed_unpriced_calls) AS failed_call,\n"
                "  greatest(sum(unpriced_calls) - unpriced_model - no_usage - failed_call, 0)\n"
                "    AS not_recorded\n"
                f"FROM {reasons}\nGROUP BY time ORDER BY time",
                "short",
                "Calls without a cost, by why (their cost_source): a model without a price, no "
                "usage reported, a failed call; 'not recorded' for calls rolled up before the "
                "reasons were (migration 009).",
                bars=True,
            )
        )
        .with_panel(
            time_series(
                "Cost per day by user (top 10)",
                f"SELECT toDateTime(day) AS time, user_id, {PRICED_COST} AS cost_usd\n"
                f"FROM {users}\n  AND user_id IN (\n"
                f"    SELECT user_id FROM {users}\n"
                "    GROUP BY user_id ORDER BY sum(cost_usd) DESC LIMIT 10)\n"
                "GROUP BY time, user_id ORDER BY time",
                "currencyUSD",
                "Cost of each day for the ten most expensive users of the range (whole days); no "
                "bar for a day none of whose calls could be priced (unknown, not $0).",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            table_of(
                "Top users by cost",
                top_by_cost(
                    f"SELECT user_id, {PRICED_COST} AS cost_usd, sum(calls) AS call_count,\n"
                    "  sum(input_tokens) + sum(output_tokens) AS tokens, sum(errors) AS errors,\n"
                    "  sum(unpriced_calls) AS unpriced\n"
                    f"FROM {users}\nGROUP BY user_id"
                ),
                "The 20 users who cost most in the days of the range, then the 20 with the most "
                f"unpriced calls ({UNPRICED_CALLS}), so usage that could not be priced is never "
                "out of sight. No cost for a user none of whose calls could be priced (unknown, "
                f"not $0); with unpriced calls, the cost is of the priced ones. {_NO_FAILED_SPLIT} "
                "A user opens their calls in Assay.",
                CALL_UNITS,
                links={
                    "user_id": (
                        "Calls of this user",
                        calls_page(user_id="${__data.fields.user_id}"),
                    )
                },
            )
        )
        .with_panel(
            table_of(
                "Top sessions by cost",
                top_by_cost(
                    f"SELECT session_id, any(user_id) AS user_id, {PRICED_COST} AS cost_usd,\n"
                    "  sum(calls) AS call_count, sum(tokens) AS tokens,\n"
                    "  sum(unpriced_calls) AS unpriced, min(first_seen) AS started,\n"
                    "  max(last_seen) AS ended\n"
                    f"FROM {_sessions()}\n"
                    "  AND last_seen >= $__fromTime AND first_seen <= $__toTime\n"
                    "GROUP BY session_id"
                ),
                "The 20 sessions that cost most in the range, then the 20 with the most unpriced "
                f"calls ({UNPRICED_CALLS}); a session counts whole, and matches the variables "
                "when any of its calls does. No cost for a session none of whose calls could be "
                "priced (unknown, not $0); with unpriced calls, the cost is of the priced ones. "
                f"{_NO_FAILED_SPLIT} A session opens its calls in Assay.",
                CALL_UNITS,
                links={
                    "session_id": (
                        "Calls of this session",
                        calls_page(session_id="${__data.fields.session_id}"),
                    )
                },
            )
        )
    )


def _tokens(dash: Dashboard) -> Dashboard:
    minutes = rollup(f"{SUMS}, {TOKEN_CLASSES}")
    by_model = rollup(f"model, {SUMS}, {TOKEN_CLASSES}")
    return (
        dash.with_row(Row("Tokens"))
        .with_panel(
            time_series(
                "Tokens",
                "SELECT time, sum(input_tokens) AS input, sum(output_tokens) AS output\n"
                f"FROM {minutes}\nGROUP BY time ORDER BY time",
                "short",
                "Input and output tokens per interval.",
            )
        )
        .with_panel(
            time_series(
                "Tokens by model",
                "SELECT time, model, sum(input_tokens) + sum(output_tokens) AS tokens\n"
                f"FROM {by_model}\nGROUP BY time, model ORDER BY time",
                "short",
                "Input plus output tokens per interval, stacked by model.",
                bars=True,
            )
        )
        .with_panel(
            time_series(
                "Cache-hit ratio by model",
                f"SELECT time, model, {CACHE_HIT_RATIO} AS cache_hit_ratio\n"
                f"FROM {by_model}\nGROUP BY time, model HAVING sum(input_tokens) > 0 "
                "ORDER BY time",
                "percentunit",
                "Share of each model's input tokens read from the provider's prompt cache.",
            )
        )
        .with_panel(
            time_series(
                "Cached, cache-write and reasoning tokens",
                "SELECT time, sum(cached_input_tokens) AS cache_read,\n"
                "  sum(cache_creation_input_tokens) AS cache_write,\n"
                "  sum(reasoning_tokens) AS reasoning\n"
                f"FROM {minutes}\nGROUP BY time ORDER BY time",
                "short",
                "Input tokens read from and written to the prompt cache, and the output tokens "
                "spent on reasoning, per interval (counted since migration 012).",
            )
        )
    )


def monitoring(budgets: dict[str, Budget]) -> Dashboard:
    dash = new_dashboard(
        "assay-llm-monitoring",
        "Assay · LLM monitoring",
        "Traffic, latency, errors, cost and tokens of every LLM call Assay stored; experiment "
        'runs only when "Include experiments" is on.',
        list(CALL_VARIABLES),
    )
    dash = _overview(dash, budgets)
    dash = _traffic(dash)
    dash = _latency(dash, budgets)
    dash = _errors_row(dash, budgets)
    dash = _cost(dash)
    return _tokens(dash)
