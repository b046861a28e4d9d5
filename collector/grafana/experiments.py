"""The "Experiments" dashboard: runs over golden datasets, per evaluator, and two compared."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from assay.collector.grafana.dashboard import new_dashboard, query_variable
from assay.collector.grafana.evaluations import SHARE
from assay.collector.grafana.panels import table_of, time_series
from assay.collector.grafana.sql import (
    CALL_VARIABLES,
    DATABASE,
    EVALUATOR,
    GOOD_VALUE,
    JUDGED,
    Variable,
    call_filters,
    chosen,
    evaluator_filter,
)
from assay.collector.schema import ScoreSource


def _experiments_in_range() -> str:
    """Experiments scored in the range whose calls match the call variables."""
    return (
        f"SELECT DISTINCT experiment_id FROM {DATABASE}.call_scores\n"
        f"  WHERE source = '{ScoreSource.EXPERIMENT}' AND $__timeFilter(timestamp)\n"
        f"  AND {call_filters(traffic=False)}"
    )


# The experiments to compare are chosen among those the call variables select.
EXPERIMENT_A = Variable(
    "experiment_a",
    "Experiment A",
    "experiment_id",
    f"SELECT hex(experiment_id), concat(name, ' · ', experiment_id) FROM {DATABASE}.experiments "
    f"FINAL\nWHERE $__timeFilter(started_at)\n  AND experiment_id IN ({_experiments_in_range()})\n"
    "ORDER BY started_at DESC",
)
EXPERIMENT_B = Variable("experiment_b", "Experiment B", "experiment_id", EXPERIMENT_A.options_sql)


def experiments() -> Dashboard:
    in_range = _experiments_in_range()
    scores = (
        f"{DATABASE}.call_scores AS s FINAL\n"
        f"INNER JOIN {DATABASE}.experiments AS e ON e.experiment_id = s.experiment_id\n"
        f"WHERE s.source = '{ScoreSource.EXPERIMENT}' AND {JUDGED}\n"
        f"  AND {evaluator_filter('s.')}\n"
        f"  AND s.experiment_id IN ({in_range})"
    )
    dash = new_dashboard(
        "assay-experiments",
        "Assay · Experiments",
        "Experiment runs over golden datasets: their scores over time, per evaluator, and a "
        "comparison of two runs.",
        [*CALL_VARIABLES, EVALUATOR],
        experiment_switch=False,
    )
    dash = dash.with_variable(query_variable(EXPERIMENT_A, several=False))
    dash = dash.with_variable(query_variable(EXPERIMENT_B, several=False))
    # The two chosen experiments, decoded once per query.
    pair = f"WITH {chosen(EXPERIMENT_A)} AS a, {chosen(EXPERIMENT_B)} AS b\n"
    return (
        dash.with_panel(
            time_series(
                "Experiments over time",
                "SELECT e.started_at AS time, s.name AS evaluator,\n"
                f"  avg({GOOD_VALUE}) AS mean_score\n"
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
                f"  avg({GOOD_VALUE}) AS mean_score, avg(s.passed) AS pass_rate,\n"
                "  uniqExact(s.dataset_item_id) AS items\n"
                f"FROM {scores}\nGROUP BY experiment_id, evaluator\n"
                "ORDER BY started_at DESC, evaluator",
                "Mean score and pass rate of every evaluator in every experiment of the range.",
                {"mean_score": SHARE, "pass_rate": SHARE, "items": "short"},
                width=24,
            )
        )
        .with_panel(
            table_of(
                "Experiment A vs B",
                f"{pair}SELECT s.name AS evaluator,\n"
                f"  avgIf({GOOD_VALUE}, s.experiment_id = a) AS mean_a,\n"
                f"  avgIf({GOOD_VALUE}, s.experiment_id = b) AS mean_b,\n"
                "  mean_b - mean_a AS delta,\n"
                "  uniqExactIf(s.dataset_item_id, s.experiment_id = a)\n"
                "    AS items_a,\n"
                "  uniqExactIf(s.dataset_item_id, s.experiment_id = b)\n"
                "    AS items_b\n"
                f"FROM {DATABASE}.call_scores AS s FINAL\n"
                f"WHERE s.source = '{ScoreSource.EXPERIMENT}' AND {JUDGED}\n"
                "  AND s.experiment_id IN (a, b)\n"
                f"  AND {evaluator_filter('s.')}\n"
                "GROUP BY evaluator ORDER BY evaluator",
                "Per evaluator: the mean of experiment A, of experiment B, and B − A.",
                {
                    "mean_a": SHARE,
                    "mean_b": SHARE,
                    "delta": SHARE,
                    "items_a": "short",
                    "items_b": "short",
                },
            )
        )
        .with_panel(
            table_of(
                "Experiment A vs B, item by item",
                f"{pair}SELECT s.dataset_item_id AS item, s.name AS evaluator,\n"
                f"  anyIf({GOOD_VALUE}, s.experiment_id = a) AS score_a,\n"
                f"  anyIf({GOOD_VALUE}, s.experiment_id = b) AS score_b,\n"
                "  score_b - score_a AS delta\n"
                f"FROM {DATABASE}.call_scores AS s FINAL\n"
                f"WHERE s.source = '{ScoreSource.EXPERIMENT}' AND {JUDGED}\n"
                "  AND s.experiment_id IN (a, b)\n"
                f"  AND {evaluator_filter('s.')}\n"
                "GROUP BY item, evaluator\n"
                "HAVING countIf(s.experiment_id = a) > 0\n"
                "  AND countIf(s.experiment_id = b) > 0\n"
                "ORDER BY delta ASC LIMIT 100",
                "The items that changed most between A and B, worst regressions first.",
                {"score_a": SHARE, "score_b": SHARE, "delta": SHARE},
            )
        )
    )
