"""The schema module: who made a score, spelled once, and one way from a Score to its row."""

from __future__ import annotations

import dataclasses

from assay.collector.schema import ScoreRow, ScoreSource
from assay.evaluators import Score


def test_a_score_source_reads_as_its_value_in_sql_and_templates() -> None:
    assert f"source = '{ScoreSource.HUMAN}'" == "source = 'human'"
    assert str(ScoreSource.EXPERIMENT) == "experiment" and ScoreSource.ONLINE == "online"


def test_a_score_row_carries_every_field_its_score_shares_with_the_table() -> None:
    score = Score(
        name="relevance",
        value=0.25,
        label="low",
        passed=False,
        explanation="off topic",
        evaluator_version="v3",
        cost_usd=0.002,
        duration_ms=41.5,
        error="",
        direction="lower_is_better",
    )
    row = ScoreRow.from_score(
        score,
        trace_id="t" * 32,
        span_id="s" * 16,
        source=ScoreSource.EXPERIMENT,
        experiment_id="run-1",
        dataset_item_id="item-7",
        timestamp=123,
    )
    shared = {f.name for f in dataclasses.fields(Score)} & {f.name for f in dataclasses.fields(row)}
    assert shared >= {"name", "value", "passed", "direction", "cost_usd", "error"}
    assert {name: getattr(row, name) for name in shared} == {
        name: getattr(score, name) for name in shared
    }
    assert (row.source, row.experiment_id, row.dataset_item_id, row.timestamp) == (
        "experiment",
        "run-1",
        "item-7",
        123,
    )
    assert type(row.source) is str  # the plain value goes to the store
