"""The "Agents" dashboard: agent runs (one trace each), their tools and their run-level scores,
from the tables of migrations 011 and 015 (`completed_runs`, `tool_calls`, `scores` of level
trace).

A run is a trace with agent structure: an agent span, a tool call, or a root that is an agent
or a workflow. Its figures are read from `completed_runs`, one row per run written once the run
is complete (its root span arrived and no span came for `run_quiet_period`, 30 s by default),
so a run shows about half a minute after its last span; the view `trace_summary`, which
merges every run's partial states when read, took seconds over a week of a million runs.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from assay.collector.grafana.dashboard import new_dashboard
from assay.collector.grafana.panels import stat_value, table_of, time_series
from assay.collector.grafana.sql import DATABASE, Variable, any_of, options
from assay.collector.schema import ORIENTED_VALUE_SQL, ScoreSource

AGENT_SPANS = (
    f"{DATABASE}.trace_spans WHERE $__timeFilter(start) "
    "AND kind IN ('agent', 'workflow', 'tool') AND {column} != ''"
)
SERVICE = Variable(
    "service",
    "Service",
    "service_name",
    options("service_name", AGENT_SPANS.format(column="service_name")),
)
AGENT = Variable(
    "agent", "Agent", "agent_name", options("agent_name", AGENT_SPANS.format(column="agent_name"))
)
RUN_FILTERS = f"{any_of(SERVICE)}\n  AND {any_of(AGENT)}"
# The runs of the range as a common table expression named `runs` (one row per run).
RUNS = (
    "WITH runs AS (\n"
    f"  SELECT * FROM {DATABASE}.completed_runs FINAL\n"
    "  WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime\n"
    "  AND $__timeFilter(start)\n"
    "  AND (agent_name != '' OR tool_calls > 0 OR root_kind IN ('agent', 'workflow'))\n"
    f"  AND {RUN_FILTERS}\n)\n"
)
STEPS = "llm_calls + tool_calls"
TOOLS = f"{DATABASE}.tool_calls\nWHERE $__timeFilter(timestamp)\n  AND {RUN_FILTERS}"


def agents() -> Dashboard:
    per_interval = "SELECT $__timeInterval(start) AS time,"
    return (
        new_dashboard(
            "assay-agents",
            "Assay · Agents",
            "Agent runs (one trace each): how many, how many succeed, their steps and cost, "
            "their tools' errors and latency, and run-level scores.",
            [SERVICE, AGENT],
            experiment_switch=False,
        )
        .with_panel(
            stat_value(
                "Runs",
                f"{RUNS}SELECT count() AS started FROM runs",
                "short",
                "Agent runs that started in the range and are complete (their root span "
                "arrived, then no span for the quiet period).",
                width=4,
            )
        )
        .with_panel(
            stat_value(
                "Success rate",
                f"{RUNS}SELECT countIf(status = 'ok') / greatest(count(), 1) AS success_rate "
                "FROM runs",
                "percentunit",
                "Share of runs whose root span ended without an error (a failed tool the "
                "agent recovered from does not fail the run).",
                width=4,
            )
        )
        .with_panel(
            stat_value(
                "Tool error rate",
                "SELECT countIf(status = 'error') / greatest(count(), 1) AS error_rate\n"
                f"FROM {TOOLS}",
                "percentunit",
                "Share of tool calls that ended in an error, all tools.",
                width=4,
            )
        )
        .with_panel(
            stat_value(
                "Steps per run (mean)",
                f"{RUNS}SELECT avg({STEPS}) AS steps FROM runs",
                "short",
                "LLM calls plus tool calls per run, on average.",
                width=4,
            )
        )
        .with_panel(
            stat_value(
                "Cost per run (mean)",
                f"{RUNS}SELECT avg(cost_usd) AS mean_cost_usd FROM runs WHERE cost_usd IS NOT NULL",
                "currencyUSD",
                "Mean cost of the runs whose LLM calls could be priced.",
                width=4,
            )
        )
        .with_panel(
            stat_value(
                "Run duration p95",
                f"{RUNS}SELECT quantile(0.95)(duration_ms) AS p95_ms FROM runs",
                "ms",
                "95th percentile of a run's duration, root start to last span end.",
                width=4,
            )
        )
        .with_panel(
            time_series(
                "Runs and failed runs",
                f"{RUNS}{per_interval} count() AS started,\n"
                "  countIf(status = 'error') AS failed\n"
                "FROM runs GROUP BY time ORDER BY time",
                "short",
                "Runs started per interval, and those whose root span failed.",
            )
        )
        .with_panel(
            time_series(
                "Success rate by agent",
                f"{RUNS}{per_interval} if(agent_name = '', root_name, agent_name) AS agent,\n"
                "  countIf(status = 'ok') / count() AS success_rate\n"
                "FROM runs GROUP BY time, agent ORDER BY time",
                "percentunit",
                "Share of each agent's runs that succeeded, per interval (a run without a "
                "named agent goes by its root span's name).",
            )
        )
        .with_panel(
            time_series(
                "Steps per run: p50 / p95 / max",
                f"{RUNS}{per_interval} quantile(0.5)({STEPS}) AS p50,\n"
                f"  quantile(0.95)({STEPS}) AS p95, max({STEPS}) AS max\n"
                "FROM runs GROUP BY time ORDER BY time",
                "short",
                "The distribution of LLM calls plus tool calls per run, per interval: a rising "
                "p95 or max is an agent looping.",
            )
        )
        .with_panel(
            time_series(
                "Cost per run: p50 / p95 / max",
                f"{RUNS}{per_interval} quantile(0.5)(cost_usd) AS p50,\n"
                "  quantile(0.95)(cost_usd) AS p95, max(cost_usd) AS max\n"
                "FROM runs WHERE cost_usd IS NOT NULL GROUP BY time ORDER BY time",
                "currencyUSD",
                "The distribution of a run's cost (its priced LLM calls), per interval.",
            )
        )
        .with_panel(
            time_series(
                "Tool error rate by tool",
                "SELECT $__timeInterval(timestamp) AS time, tool_name,\n"
                "  countIf(status = 'error') / count() AS error_rate\n"
                f"FROM {TOOLS}\nGROUP BY time, tool_name ORDER BY time",
                "percentunit",
                "Share of each tool's calls that failed, per interval.",
            )
        )
        .with_panel(
            table_of(
                "Slowest tools",
                "SELECT tool_name, count() AS calls,\n"
                "  quantile(0.5)(duration_ms) AS p50_ms, quantile(0.95)(duration_ms) AS p95_ms,\n"
                "  max(duration_ms) AS max_ms,\n"
                "  countIf(status = 'error') / count() AS error_rate\n"
                f"FROM {TOOLS}\nGROUP BY tool_name ORDER BY p95_ms DESC LIMIT 10",
                "The ten tools slowest at the 95th percentile, with their calls and error rate.",
                {
                    "calls": "short",
                    "p50_ms": "ms",
                    "p95_ms": "ms",
                    "max_ms": "ms",
                    "error_rate": "percentunit",
                },
            )
        )
        .with_panel(
            time_series(
                "Run score trend per evaluator (online)",
                f"{RUNS}SELECT $__timeInterval(timestamp) AS time, name AS evaluator,\n"
                f"  avg({ORIENTED_VALUE_SQL}) AS score\n"
                f"FROM {DATABASE}.scores FINAL\n"
                f"WHERE level = 'trace' AND source = '{ScoreSource.ONLINE}' AND error = ''\n"
                "  AND $__timeFilter(timestamp) AND trace_id IN (SELECT trace_id FROM runs)\n"
                "GROUP BY time, evaluator ORDER BY time",
                "percentunit",
                "Mean online score of each run-level evaluator (no_tool_errors, no_loops, "
                "step_budget, goal_completion, ...) per interval, higher is better (0..1).",
                width=24,
            )
        )
    )
