"""The "LLM monitoring" dashboard: traffic, errors, latency, tokens and cost of every call."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from assay.collector.grafana.dashboard import TRACE_LINKS, new_dashboard
from assay.collector.grafana.panels import stat_value, table_of, time_series
from assay.collector.grafana.sql import (
    CALL_VARIABLES,
    DATABASE,
    MODEL,
    PROMPT_NAME,
    PROMPT_VERSION,
    PROVIDER,
    SERVICE,
    any_in_set,
    call_filters,
    calls_in_range,
    days_in_range,
    rollup,
)

LATENCY = "quantilesTDigestMerge(0.5, 0.95, 0.99)(duration_ms)"
TTFT = "quantilesTDigestIfMerge(0.5, 0.95, 0.99)(time_to_first_token_ms)"
SUMS = "calls, errors, input_tokens, output_tokens, cost_usd, unpriced_calls"


def monitoring() -> Dashboard:
    src_minutes = rollup(f"{SUMS}, duration_ms, time_to_first_token_ms")
    src_totals = rollup(f"{SUMS}, duration_ms")
    src_services = rollup(f"service_name, {SUMS}")
    src_hours = rollup(f"minute, model, service_name, {SUMS}", hourly_when="1=1")
    users = f"{DATABASE}.llm_users_1d\nWHERE {days_in_range()}\n  AND {call_filters()}"
    sessions = f"{DATABASE}.llm_sessions_1d\nWHERE {days_in_range()}\n  AND " + "\n  AND ".join(
        any_in_set(variable, column)
        for variable, column in (
            (SERVICE, "services"),
            (MODEL, "models"),
            (PROVIDER, "providers"),
            (PROMPT_NAME, "prompt_names"),
            (PROMPT_VERSION, "prompt_versions"),
        )
    )
    dash = new_dashboard(
        "assay-llm-monitoring",
        "Assay · LLM monitoring",
        "Traffic, errors, latency, tokens and cost of every LLM call Assay stored.",
        list(CALL_VARIABLES),
    )
    return (
        dash.with_panel(
            stat_value(
                "Calls",
                f"SELECT sum(calls) AS calls FROM {src_totals}",
                "short",
                "LLM calls in the time range.",
            )
        )
        .with_panel(
            stat_value(
                "Error rate",
                f"SELECT sum(errors) / greatest(sum(calls), 1) AS error_rate FROM {src_totals}",
                "percentunit",
                "Share of calls that ended in an error.",
            )
        )
        .with_panel(
            stat_value(
                "p95 latency",
                f"SELECT {LATENCY}[2] AS p95_ms FROM {src_totals}",
                "ms",
                "95th percentile of call duration over the range.",
            )
        )
        .with_panel(
            stat_value(
                "Cost",
                f"SELECT sum(cost_usd) AS cost_usd FROM {src_totals}",
                "currencyUSD",
                "Cost of the priced calls in the range.",
            )
        )
        .with_panel(
            stat_value(
                "Tokens",
                f"SELECT sum(input_tokens) + sum(output_tokens) AS tokens FROM {src_totals}",
                "short",
                "Input plus output tokens.",
            )
        )
        .with_panel(
            stat_value(
                "Unpriced calls",
                f"SELECT sum(unpriced_calls) AS unpriced_calls FROM {src_totals}",
                "short",
                "Calls whose model has no price: their cost is unknown (NULL), not 0.",
            )
        )
        .with_panel(
            time_series(
                "Calls per second",
                "SELECT time, service_name, sum(calls) / any(step_s) AS calls_per_s\n"
                f"FROM {src_services}\n"
                "GROUP BY time, service_name ORDER BY time",
                "reqps",
                "Calls per second, by service.",
            )
        )
        .with_panel(
            time_series(
                "Error rate",
                "SELECT time, service_name, sum(errors) / greatest(sum(calls), 1) AS error_rate\n"
                f"FROM {src_services}\n"
                "GROUP BY time, service_name ORDER BY time",
                "percentunit",
                "Share of calls that ended in an error, by service.",
            )
        )
        .with_panel(
            time_series(
                "Latency p50 / p95 / p99",
                f"WITH {LATENCY} AS q\n"
                "SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99\n"
                f"FROM {src_minutes}\nGROUP BY time ORDER BY time",
                "ms",
                "Call duration percentiles (t-digest over the per-minute rollup).",
            )
        )
        .with_panel(
            time_series(
                "Time to first token p50 / p95 / p99",
                f"WITH {TTFT} AS q\n"
                "SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99\n"
                f"FROM {src_minutes}\nGROUP BY time ORDER BY time",
                "ms",
                "Time to the first streamed chunk; streamed calls only.",
            )
        )
        .with_panel(
            time_series(
                "Tokens",
                "SELECT time, sum(input_tokens) AS input, sum(output_tokens) AS output\n"
                f"FROM {src_minutes}\nGROUP BY time ORDER BY time",
                "short",
                "Input and output tokens per interval.",
            )
        )
        .with_panel(
            time_series(
                "Cost per hour by model",
                "SELECT toStartOfHour(minute) AS time, model, sum(cost_usd) AS cost_usd\n"
                f"FROM {src_hours}\nGROUP BY time, model ORDER BY time",
                "currencyUSD",
                "Cost of each hour, stacked by model.",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            time_series(
                "Cost per day by service",
                "SELECT toStartOfDay(minute) AS time, service_name, sum(cost_usd) AS cost_usd\n"
                f"FROM {src_hours}\nGROUP BY time, service_name ORDER BY time",
                "currencyUSD",
                "Cost of each day, stacked by service.",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            time_series(
                "Cost per day by user (top 10)",
                "SELECT toDateTime(day) AS time, user_id, sum(cost_usd) AS cost_usd\n"
                f"FROM {users}\n  AND user_id IN (\n"
                f"    SELECT user_id FROM {users}\n"
                "    GROUP BY user_id ORDER BY sum(cost_usd) DESC LIMIT 10)\n"
                "GROUP BY time, user_id ORDER BY time",
                "currencyUSD",
                "Cost of each day for the ten most expensive users of the range (whole days).",
                bars=True,
                min_interval="1h",
            )
        )
        .with_panel(
            table_of(
                "Top users by cost",
                "SELECT user_id, sum(cost_usd) AS cost_usd, sum(calls) AS calls,\n"
                "  sum(input_tokens) + sum(output_tokens) AS tokens, sum(errors) AS errors\n"
                f"FROM {users}\nGROUP BY user_id ORDER BY cost_usd DESC LIMIT 20",
                "The users who cost most in the days of the range.",
            )
        )
        .with_panel(
            table_of(
                "Top sessions by cost",
                "SELECT session_id, any(user_id) AS user_id, sum(cost_usd) AS cost_usd,\n"
                "  sum(calls) AS calls, sum(tokens) AS tokens, min(first_seen) AS started,\n"
                "  max(last_seen) AS ended\n"
                f"FROM {sessions}\n  AND last_seen >= $__fromTime AND first_seen <= $__toTime\n"
                "GROUP BY session_id ORDER BY cost_usd DESC LIMIT 20",
                "The sessions that cost most in the range; a session counts whole, and matches "
                "the variables when any of its calls does.",
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
                links=TRACE_LINKS,
            )
        )
        .with_panel(
            table_of(
                "Recent errors",
                "SELECT timestamp, service_name, model, error_type, error_message, duration_ms,\n"
                "  trace_id, span_id\n"
                f"FROM {DATABASE}.llm_errors\nWHERE {calls_in_range()}\n"
                "ORDER BY timestamp DESC LIMIT 50",
                "The latest failed calls; trace_id opens the trace view, span_id the call in "
                "Assay.",
                links=TRACE_LINKS,
            )
        )
    )
