"""Judges against people: per evaluator and version, its pass/fail beside the human 👍/👎 on
the same calls (the confusion matrix, agreement, Cohen's kappa), and its failed evaluations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.records.calls import records
from assay.collector.schema import FEEDBACK_NAME, ScoreSource
from assay.collector.store.base import Store
from assay.collector.ui.pages import page, ui_endpoint, with_store
from assay.evaluators.agreement import Agreement

# A call's human verdict: each person's latest grade (of the call, or of its whole trace),
# averaged over people; a tie is no verdict. An evaluator's verdict on a call: its latest
# score per version. `{db}` is the database. The Evaluations dashboard's "Evaluators vs people"
# panel reads the same verdicts (ties left out) per prompt version, over its time range.
AGREEMENT_SQL = """
WITH grades AS (
    SELECT trace_id, span_id, author, argMax(value, timestamp) AS value
    FROM {db}.scores
    WHERE source = '{human}' AND name = '{feedback}'
    GROUP BY trace_id, span_id, author
),
human AS (
    SELECT span_id, avg(value) AS grade
    FROM (
        SELECT span_id, value FROM grades WHERE span_id != ''
        UNION ALL
        SELECT c.span_id AS span_id, g.value AS value
        FROM grades AS g INNER JOIN {db}.llm_calls AS c ON c.trace_id = g.trace_id
        WHERE g.span_id = ''
    )
    GROUP BY span_id
    HAVING grade != 0.5
),
judged AS (
    SELECT span_id, name, evaluator_version,
           argMax(passed, timestamp) AS passed, argMax(error, timestamp) AS error
    FROM {db}.scores
    WHERE source != '{human}' AND span_id IN (SELECT span_id FROM human)
    GROUP BY span_id, name, evaluator_version
)
SELECT j.name AS evaluator, j.evaluator_version AS version,
       countIf(j.error = '' AND j.passed AND h.grade > 0.5) AS both_pass,
       countIf(j.error = '' AND j.passed AND h.grade < 0.5) AS judge_only,
       countIf(j.error = '' AND NOT j.passed AND h.grade > 0.5) AS human_only,
       countIf(j.error = '' AND NOT j.passed AND h.grade < 0.5) AS both_fail,
       countIf(j.error != '') AS judge_failures
FROM judged AS j INNER JOIN human AS h ON h.span_id = j.span_id
WHERE j.error != '' OR j.passed IS NOT NULL
GROUP BY evaluator, version
ORDER BY evaluator, version
"""


def agreement_sql(database: str) -> str:
    return AGREEMENT_SQL.format(db=database, human=ScoreSource.HUMAN, feedback=FEEDBACK_NAME)


def agreements(store: Store) -> list[Agreement]:
    """Every evaluator version that scored calls people also graded."""
    return [Agreement(**row) for row in records(store, agreement_sql(store.database))]


@ui_endpoint
async def agreement_page(request: Request) -> Response:
    return page(request, "agreement.html", rows=await with_store(request, agreements))
