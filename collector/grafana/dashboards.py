"""The Assay dashboards, built with grafana-foundation-sdk: monitoring, evaluations,
experiments (here) and collectors (collectors.py). `render_dashboards()` gives their JSON
models, keyed by file name."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    QueryVariable,
    TextBoxVariable,
    TimePicker,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from assay.collector.grafana.panels import stat_value, table_of, time_series
from assay.collector.grafana.query import DATASOURCE
from assay.collector.grafana.sql import (
    CALL_VARIABLES,
    DATABASE,
    EVALUATOR,
    MODEL,
    PROMPT_NAME,
    PROMPT_VERSION,
    PROVIDER,
    SERVICE,
    Variable,
    any_in_set,
    call_filters,
    calls_in_range,
    days_in_range,
    evaluator_filter,
    rollup,
)

TAGS = ["assay", "llm"]
# The Assay UI's call page; a text box on every dashboard so a deployment can point it elsewhere.
ASSAY_URL = "assay_url"
CALL_PAGE = "${assay_url}/calls/${__data.fields.span_id}"
TRACE_LINKS = {"span_id": ("Open the call in Assay", CALL_PAGE)}

LATENCY = "quantilesTDigestMerge(0.5, 0.95, 0.99)(duration_ms)"
TTFT = "quantilesTDigestIfMerge(0.5, 0.95, 0.99)(time_to_first_token_ms)"
SUMS = "calls, errors, input_tokens, output_tokens, cost_usd, unpriced_calls"


def _query_variable(variable: Variable, several: bool = True) -> cogbuilder.Builder[VariableModel]:
    """A variable whose options come from a query; `several`: multi-value with "All" (default)."""
    built = (
        QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query(variable.options_sql)
        .definition(variable.options_sql)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    if not several:
        return built
    return (
        built.sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _assay_url() -> cogbuilder.Builder[VariableModel]:
    return TextBoxVariable(ASSAY_URL).label("Assay UI").default_value("http://localhost:4318")


def new_dashboard(uid: str, title: str, description: str, variables: list[Variable]) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .timepicker(TimePicker().refresh_intervals(["30s", "1m", "5m", "15m", "1h"]))
        .variables([*(_query_variable(v) for v in variables), _assay_url()])
    )


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


def _scores(source: str) -> str:
    """Scores of `source` in the range whose calls match the call variables."""
    return (
        f"{DATABASE}.call_scores AS s FINAL\n"
        f"WHERE s.source = '{source}' AND $__timeFilter(s.timestamp)\n  AND {call_filters('s.')}"
    )


def _experiments_in_range() -> str:
    """Experiments scored in the range whose calls match the call variables."""
    return (
        f"SELECT DISTINCT experiment_id FROM {DATABASE}.call_scores\n"
        f"  WHERE source = 'experiment' AND $__timeFilter(timestamp)\n  AND {call_filters()}"
    )


def evaluations() -> Dashboard:
    online = _scores("online")
    dash = new_dashboard(
        "assay-evaluations",
        "Assay · Evaluations",
        "Online evaluator scores, human feedback, and drift against the latest experiment.",
        [*CALL_VARIABLES, EVALUATOR],
    )
    return (
        dash.with_panel(
            time_series(
                "Score trend per evaluator (online)",
                "SELECT $__timeInterval(s.timestamp) AS time, s.name AS evaluator,\n"
                f"  avg(s.value) AS score\nFROM {online}\n  AND {evaluator_filter('s.')}\n"
                "GROUP BY time, evaluator ORDER BY time",
                "percentunit",
                "Mean online score of each evaluator per interval (0..1).",
                width=24,
            )
        )
        .with_panel(
            table_of(
                "Pass rate by model and prompt version",
                "SELECT s.model AS model, s.prompt_name AS prompt_name,\n"
                "  s.prompt_version AS prompt_version, s.name AS evaluator,\n"
                "  avg(s.passed) AS pass_rate, avg(s.value) AS mean_score, count() AS scored\n"
                f"FROM {online}\n  AND {evaluator_filter('s.')}\n"
                "GROUP BY model, prompt_name, prompt_version, evaluator\n"
                "ORDER BY model, prompt_name, prompt_version, evaluator",
                "Share of online scores that passed their threshold.",
            )
        )
        .with_panel(
            table_of(
                "Worst-scoring recent calls",
                "SELECT s.timestamp AS scored_at, s.service_name AS service_name,\n"
                "  s.model AS model, s.prompt_version AS prompt_version, s.name AS evaluator,\n"
                "  s.value AS score, s.explanation AS explanation, s.trace_id AS trace_id,\n"
                f"  s.span_id AS span_id\nFROM {online}\n  AND {evaluator_filter('s.')}\n"
                "ORDER BY s.value ASC, s.timestamp DESC LIMIT 30",
                "The lowest online scores of the range; open the call or its trace.",
                links=TRACE_LINKS,
            )
        )
        .with_panel(
            time_series(
                "Human feedback 👍 / 👎",
                "SELECT $__timeInterval(s.timestamp) AS time,\n"
                "  countIf(s.value >= 0.5) AS thumbs_up, countIf(s.value < 0.5) AS thumbs_down,\n"
                "  avg(s.value >= 0.5) AS up_ratio\n"
                f"FROM {_scores('human')}\nGROUP BY time ORDER BY time",
                "short",
                "People's grades of calls: 👍 and 👎 per interval and the share of 👍.",
                min_interval="5m",
            )
        )
        .with_panel(
            table_of(
                "Drift: online vs latest experiment",
                "WITH latest AS (\n"
                "  SELECT s.name AS evaluator,\n"
                "    argMax(s.experiment_id, e.started_at) AS experiment_id\n"
                f"  FROM {DATABASE}.call_scores AS s FINAL\n"
                f"  INNER JOIN {DATABASE}.experiments AS e ON e.experiment_id = s.experiment_id\n"
                f"  WHERE s.source = 'experiment' AND e.started_at <= $__toTime\n"
                f"  AND {evaluator_filter('s.')}\n  GROUP BY evaluator\n"
                "), experiment AS (\n"
                "  SELECT s.name AS evaluator, any(s.experiment_id) AS experiment_id,\n"
                "    avg(s.value) AS experiment_score\n"
                f"  FROM {DATABASE}.call_scores AS s FINAL\n"
                "  WHERE s.source = 'experiment' AND (s.name, s.experiment_id) IN (\n"
                "    SELECT evaluator, experiment_id FROM latest)\n  GROUP BY evaluator\n"
                "), production AS (\n"
                "  SELECT s.name AS evaluator, avg(s.value) AS online_score, count() AS scored\n"
                f"  FROM {online}\n  AND {evaluator_filter('s.')}\n  GROUP BY evaluator\n"
                ")\n"
                "SELECT p.evaluator AS evaluator, p.online_score AS online_score,\n"
                "  x.experiment_score AS experiment_score,\n"
                "  p.online_score - x.experiment_score AS drift,\n"
                "  x.experiment_id AS experiment_id, p.scored AS online_scored\n"
                "FROM production AS p INNER JOIN experiment AS x ON x.evaluator = p.evaluator\n"
                "ORDER BY abs(drift) DESC",
                "Mean online score in the range against the same evaluator's mean in its latest "
                "experiment: a negative drift means production scores worse than the golden "
                "dataset.",
            )
        )
    )


# The experiments to compare are chosen among those the call variables select.
EXPERIMENT_A = Variable(
    "experiment_a",
    "Experiment A",
    "experiment_id",
    f"SELECT experiment_id, concat(name, ' · ', experiment_id) FROM {DATABASE}.experiments "
    f"FINAL\nWHERE $__timeFilter(started_at)\n  AND experiment_id IN ({_experiments_in_range()})\n"
    "ORDER BY started_at DESC",
)
EXPERIMENT_B = Variable("experiment_b", "Experiment B", "experiment_id", EXPERIMENT_A.options_sql)


def experiments() -> Dashboard:
    in_range = _experiments_in_range()
    scores = (
        f"{DATABASE}.call_scores AS s FINAL\n"
        f"INNER JOIN {DATABASE}.experiments AS e ON e.experiment_id = s.experiment_id\n"
        f"WHERE s.source = 'experiment' AND {evaluator_filter('s.')}\n"
        f"  AND s.experiment_id IN ({in_range})"
    )
    dash = new_dashboard(
        "assay-experiments",
        "Assay · Experiments",
        "Experiment runs over golden datasets: their scores over time, per evaluator, and a "
        "comparison of two runs.",
        [*CALL_VARIABLES, EVALUATOR],
    )
    dash = dash.with_variable(_query_variable(EXPERIMENT_A, several=False))
    dash = dash.with_variable(_query_variable(EXPERIMENT_B, several=False))
    pair = "'${experiment_a}', '${experiment_b}'"
    return (
        dash.with_panel(
            time_series(
                "Experiments over time",
                "SELECT e.started_at AS time, s.name AS evaluator, avg(s.value) AS mean_score\n"
                f"FROM {scores}\nGROUP BY s.experiment_id, time, evaluator ORDER BY time",
                "percentunit",
                "Each experiment's mean score per evaluator, at the time it started.",
                width=24,
                min_interval="1s",
            )
        )
        .with_panel(
            table_of(
                "Per-evaluator means by experiment",
                "SELECT any(e.started_at) AS started_at, any(e.name) AS experiment,\n"
                "  s.experiment_id AS experiment_id, s.name AS evaluator,\n"
                "  avg(s.value) AS mean_score, avg(s.passed) AS pass_rate,\n"
                "  uniqExact(s.dataset_item_id) AS items\n"
                f"FROM {scores}\nGROUP BY experiment_id, evaluator\n"
                "ORDER BY started_at DESC, evaluator",
                "Mean score and pass rate of every evaluator in every experiment of the range.",
                width=24,
            )
        )
        .with_panel(
            table_of(
                "Experiment A vs B",
                "SELECT s.name AS evaluator,\n"
                "  avgIf(s.value, s.experiment_id = '${experiment_a}') AS mean_a,\n"
                "  avgIf(s.value, s.experiment_id = '${experiment_b}') AS mean_b,\n"
                "  mean_b - mean_a AS delta,\n"
                "  uniqExactIf(s.dataset_item_id, s.experiment_id = '${experiment_a}')\n"
                "    AS items_a,\n"
                "  uniqExactIf(s.dataset_item_id, s.experiment_id = '${experiment_b}')\n"
                "    AS items_b\n"
                f"FROM {DATABASE}.call_scores AS s FINAL\n"
                f"WHERE s.source = 'experiment' AND s.experiment_id IN ({pair})\n"
                f"  AND {evaluator_filter('s.')}\n"
                "GROUP BY evaluator ORDER BY evaluator",
                "Per evaluator: the mean of experiment A, of experiment B, and B − A.",
            )
        )
        .with_panel(
            table_of(
                "Experiment A vs B, item by item",
                "SELECT s.dataset_item_id AS item, s.name AS evaluator,\n"
                "  anyIf(s.value, s.experiment_id = '${experiment_a}') AS score_a,\n"
                "  anyIf(s.value, s.experiment_id = '${experiment_b}') AS score_b,\n"
                "  score_b - score_a AS delta\n"
                f"FROM {DATABASE}.call_scores AS s FINAL\n"
                f"WHERE s.source = 'experiment' AND s.experiment_id IN ({pair})\n"
                f"  AND {evaluator_filter('s.')}\n"
                "GROUP BY item, evaluator\n"
                "HAVING countIf(s.experiment_id = '${experiment_a}') > 0\n"
                "  AND countIf(s.experiment_id = '${experiment_b}') > 0\n"
                "ORDER BY delta ASC LIMIT 100",
                "The items that changed most between A and B, worst regressions first.",
            )
        )
    )


def _numbered(model: dict[str, Any]) -> dict[str, Any]:
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return model


def render_dashboards() -> dict[str, str]:
    """File name → dashboard JSON, as checked in under grafana/dashboards/."""
    from assay.collector.grafana.collectors import collectors  # it builds on this module

    out = {}
    for name, build in (
        ("llm-monitoring.json", monitoring),
        ("evaluations.json", evaluations),
        ("experiments.json", experiments),
        ("collectors.json", collectors),
    ):
        model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        out[name] = json.dumps(_numbered(model), indent=2, ensure_ascii=False) + "\n"
    return out
