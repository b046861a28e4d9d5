"""The "Evaluations" dashboard: online scores, human feedback, drift against experiments."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from assay.collector.grafana.dashboard import TRACE_LINKS, new_dashboard
from assay.collector.grafana.panels import table_of, time_series
from assay.collector.grafana.sql import (
    CALL_VARIABLES,
    DATABASE,
    EVALUATOR,
    call_filters,
    evaluator_filter,
)


def _scores(source: str) -> str:
    """Scores of `source` in the range whose calls match the call variables."""
    return (
        f"{DATABASE}.call_scores AS s FINAL\n"
        f"WHERE s.source = '{source}' AND $__timeFilter(s.timestamp)\n  AND {call_filters('s.')}"
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
