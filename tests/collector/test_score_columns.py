"""Online scores gathered as columns: the same `scores` columns as rows made by
`ScoreRow.from_score` would give."""

from __future__ import annotations

import time
import uuid
from typing import Any

from assay.collector.evaluation.score_columns import ScoreColumns
from assay.collector.records.calls import CURRENT_SCORE_COLUMNS, CURRENT_SCORE_KEY
from assay.collector.schema import (
    LlmCallRow,
    ScoreRow,
    ScoreSource,
    column_names,
    insert_arguments,
)
from assay.collector.store.embedded import EmbeddedStore
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


def test_a_score_sent_twice_in_one_insert_is_read_once_as_the_later(
    embedded_store: EmbeddedStore,
) -> None:
    # Score inserts leave a block's repeated keys to the readers (optimize_on_insert off):
    # each reads a score's latest row, as for a score sent again in a later insert.
    call = a_call()
    embedded_store.insert_rows([call], dedup_token=uuid.uuid4().hex)
    gathered = ScoreColumns()
    gathered.add(call, Score(name="no_pii", value=0.0, passed=False, explanation="first"))
    gathered.add(call, Score(name="no_pii", value=1.0, passed=True, explanation="later"))
    embedded_store.insert(
        ScoreColumns.table, gathered.take(), ScoreColumns.names, dedup_token=uuid.uuid4().hex
    )
    where = {"span": call.span_id}
    _, final = embedded_store.query(
        "SELECT value, explanation, model FROM assay.call_scores FINAL "
        "WHERE span_id = {span:String}",
        where,
    )
    assert final == [(1.0, "later", "gpt-4o-mini")]
    _, latest = embedded_store.query(
        f"SELECT {CURRENT_SCORE_COLUMNS} FROM assay.scores WHERE span_id = {{span:String}} "
        f"GROUP BY {CURRENT_SCORE_KEY}",
        where,
    )
    assert [(row[8], row[11]) for row in latest] == [(1.0, "later")]
