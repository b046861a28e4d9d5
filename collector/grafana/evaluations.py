"""The "Evaluations" dashboard: online scores, human feedback, drift against experiments."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from assay.collector.grafana.budgets import Budget
from assay.collector.grafana.dashboard import TRACE_LINKS, new_dashboard
from assay.collector.grafana.panels import table_of, time_series
from assay.collector.grafana.sql import (
    CALL_VARIABLES,
    DATABASE,
    EVALUATOR,
    GOOD_VALUE,
    JUDGED,
    PROMPT_VERSION,
    call_filters,
    evaluator_filter,
    prompt_versions_compared,
)
from assay.collector.schema import ScoreSource

SHARE = "percentunit"


def _scores(source: str) -> str:
    """Scores of `source` in the range whose calls match the call variables (scores of single
    calls: a run's or a conversation's score has no span, see the Agents dashboard). A failed
    evaluation is no score: its value (0) would be averaged as one."""
    return (
        f"{DATABASE}.call_scores AS s FINAL\n"
        f"WHERE s.source = '{source}' AND s.span_id != '' AND {JUDGED}\n"
        "  AND $__timeFilter(s.timestamp)\n"
        f"  AND {call_filters('s.')}"
    )


def _agreement() -> str:
    """Per online evaluator and prompt version: how often its pass/fail agrees with people's
    👍/👎 on the same calls, and Cohen's kappa (agreement beyond chance: 1 perfect, 0 chance).
    People's verdict on a call is their majority; a tie is none (as on the UI's page)."""
    return (
        "WITH people AS (\n"
        "  SELECT span_id, avg(value) > 0.5 AS thumbs_up\n"
        f"  FROM {_scores(ScoreSource.HUMAN)}\n  GROUP BY span_id\n"
        "  HAVING avg(value) != 0.5\n)\n"
        "SELECT evaluator, prompt_version, both_graded, judge_pass_rate, people_up_rate,\n"
        "  agreement, if(chance >= 1, NULL, (agreement - chance) / (1 - chance)) AS kappa\n"
        "FROM (\n"
        "  SELECT s.name AS evaluator, s.prompt_version AS prompt_version,\n"
        "    count() AS both_graded, avg(s.passed) AS judge_pass_rate,\n"
        "    avg(p.thumbs_up) AS people_up_rate, avg(s.passed = p.thumbs_up) AS agreement,\n"
        "    judge_pass_rate * people_up_rate + (1 - judge_pass_rate) * (1 - people_up_rate)\n"
        "      AS chance\n"
        f"  FROM {DATABASE}.call_scores AS s FINAL\n"
        "  INNER JOIN people AS p ON p.span_id = s.span_id\n"
        f"  WHERE s.source = '{ScoreSource.ONLINE}'"
        " AND s.passed IS NOT NULL AND $__timeFilter(s.timestamp)\n"
        f"    AND {call_filters('s.')}\n    AND {evaluator_filter('s.')}\n"
        "  GROUP BY evaluator, prompt_version\n)\n"
        "ORDER BY evaluator, prompt_version"
    )


def evaluations(budgets: dict[str, Budget]) -> Dashboard:
    online = _scores(ScoreSource.ONLINE)
    # The versions compared are the prompt's two newest, whichever version is selected.
    versions = prompt_versions_compared(
        f"{call_filters(but=(PROMPT_VERSION,))}\n  AND {evaluator_filter()}",
        int(budgets["min_scores"].value),
    )
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
                f"  avg({GOOD_VALUE}) AS score\nFROM {online}\n  AND {evaluator_filter('s.')}\n"
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
                f"  avg(s.passed) AS pass_rate, avg({GOOD_VALUE}) AS mean_score,\n"
                "  count() AS scored\n"
                f"FROM {online}\n  AND {evaluator_filter('s.')}\n"
                "GROUP BY model, prompt_name, prompt_version, evaluator\n"
                "ORDER BY model, prompt_name, prompt_version, evaluator",
                "Share of online scores that passed their threshold.",
                {"pass_rate": SHARE, "mean_score": SHARE, "scored": "short"},
            )
        )
        .with_panel(
            table_of(
                "Worst-scoring recent calls",
                "SELECT s.timestamp AS scored_at, s.service_name AS service_name,\n"
                "  s.model AS model, s.prompt_version AS prompt_version, s.name AS evaluator,\n"
                f"  {GOOD_VALUE} AS score, s.explanation AS explanation, s.trace_id AS trace_id,\n"
                f"  s.span_id AS span_id\nFROM {online}\n  AND {evaluator_filter('s.')}\n"
                "ORDER BY score ASC, s.timestamp DESC LIMIT 30",
                "The lowest online scores of the range; open the call or its trace.",
                {"score": SHARE},
                links=TRACE_LINKS,
            )
        )
        .with_panel(
            time_series(
                "Human feedback 👍 / 👎",
                "SELECT $__timeInterval(s.timestamp) AS time,\n"
                "  countIf(s.value >= 0.5) AS thumbs_up, countIf(s.value < 0.5) AS thumbs_down,\n"
                "  avg(s.value >= 0.5) AS up_ratio\n"
                f"FROM {_scores(ScoreSource.HUMAN)}\nGROUP BY time ORDER BY time",
                "short",
                "People's grades of calls: 👍 and 👎 per interval and the share of 👍.",
                min_interval="5m",
                field_units={"up_ratio": SHARE},
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
                f"  WHERE s.source = '{ScoreSource.EXPERIMENT}' AND {JUDGED}\n"
                "    AND e.started_at <= $__toTime\n"
                f"  AND {evaluator_filter('s.')}\n  GROUP BY evaluator\n"
                "), experiment AS (\n"
                "  SELECT s.name AS evaluator, any(s.experiment_id) AS experiment_id,\n"
                f"    avg({GOOD_VALUE}) AS experiment_score\n"
                f"  FROM {DATABASE}.call_scores AS s FINAL\n"
                f"  WHERE s.source = '{ScoreSource.EXPERIMENT}' AND {JUDGED}"
                " AND (s.name, s.experiment_id) IN (\n"
                "    SELECT evaluator, experiment_id FROM latest)\n  GROUP BY evaluator\n"
                "), production AS (\n"
                f"  SELECT s.name AS evaluator, avg({GOOD_VALUE}) AS online_score,\n"
                "    count() AS scored\n"
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
                {
                    "online_score": SHARE,
                    "experiment_score": SHARE,
                    "drift": SHARE,
                    "online_scored": "short",
                },
            )
        )
        .with_panel(
            table_of(
                "Pass rate: newest prompt version vs the one before",
                "SELECT evaluator, prompt_name, previous_version, newest_version,\n"
                "  previous_pass_rate, newest_pass_rate,\n"
                "  newest_pass_rate - previous_pass_rate AS change,\n"
                f"  previous_scored, newest_scored\nFROM {versions}\nORDER BY change",
                "Per evaluator and prompt: the online pass rate of the newest version (first "
                "seen last) against the version before it, in the range, versions with at least "
                f"{int(budgets['min_scores'].value)} scores; the alert rule fires when the fall "
                f"passes {budgets['pass_rate_drop'].text()}.",
                {
                    "previous_pass_rate": SHARE,
                    "newest_pass_rate": SHARE,
                    "change": SHARE,
                    "previous_scored": "short",
                    "newest_scored": "short",
                },
            )
        )
        .with_panel(
            table_of(
                "Evaluators vs people (👍 / 👎)",
                _agreement(),
                "On calls both an online evaluator and a person graded: how often the "
                "evaluator's pass/fail agrees with the person's 👍/👎, and Cohen's kappa "
                "(agreement beyond chance: 1 perfect, 0 no better than chance, below 0 worse); "
                "per evaluator (LLM judges included) and prompt version.",
                {
                    "both_graded": "short",
                    "judge_pass_rate": SHARE,
                    "people_up_rate": SHARE,
                    "agreement": SHARE,
                    "kappa": "none",
                },
            )
        )
    )
