"""Online scores gathered as columns: the same `scores` columns as rows made by
`ScoreRow.from_score` would give."""

from __future__ import annotations

import time
import uuid
from typing import Any

from assay.collector.evaluation.score_columns import ScoreColumns
from assay.collector.schema import (
    LlmCallRow,
    ScoreRow,
    ScoreSource,
    column_names,
    insert_arguments,
)
from assay.evaluators import Score
from assay.evaluators.base import LOWER_IS_BETTER


def a_call(**fields: Any) -> LlmCallRow:
    values = {
        "timestamp": time.time_ns(),
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
        "parent_span_id": "",
        "service_name": "svc",
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        **fields,
    }
    return LlmCallRow(**values)


SCORES = [
    Score(name="json_valid", value=1.0, passed=True, evaluator_version="abc", duration_ms=0.2),
    Score(name="no_pii", value=0.0, label="email", passed=False, explanation="email ×1"),
    Score.failure(RuntimeError("boom"), name="broken", evaluator_version="v1"),
    Score(name="cost", value=0.25, cost_usd=0.003, direction=LOWER_IS_BETTER),
]


def test_the_columns_are_those_of_score_rows() -> None:
    calls = [a_call(), a_call(experiment_id="exp-1", dataset_item_id="item-7")]
    gathered = ScoreColumns()
    rows = []
    before = time.time_ns()
    for call in calls:
        for score in SCORES:
            gathered.add(call, score)
            rows.append(
                ScoreRow.from_score(
                    score,
                    trace_id=call.trace_id,
                    span_id=call.span_id,
                    source=ScoreSource.ONLINE,
                    experiment_id=call.experiment_id,
                    dataset_item_id=call.dataset_item_id,
                    timestamp=0,
                )
            )
    assert len(gathered) == len(rows)
    columns = gathered.take()
    table, expected, names = insert_arguments(rows)
    assert (ScoreColumns.table, ScoreColumns.names) == (table, names)
    assert ScoreColumns.names == column_names(ScoreRow)
    timestamps = columns[names.index("timestamp")]
    assert all(before <= ts <= time.time_ns() for ts in timestamps)
    for name, column, wanted in zip(names, columns, expected, strict=True):
        if name != "timestamp":
            assert column == wanted, name
    assert len(gathered) == 0 and gathered.take() == []
