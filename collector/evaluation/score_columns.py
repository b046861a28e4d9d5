"""Online scores gathered in the shape the store inserts: one tuple each as they come (no
`ScoreRow` object, no attribute reads when inserting), turned into the `scores` columns once
per insert."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from assay.collector.schema import LlmCallRow, ScoreRow, ScoreSource, column_names
from assay.evaluators import Score

_ONLINE = ScoreSource.ONLINE.value


class ScoreColumns:
    """The online scores of calls, waiting to be inserted into `scores`."""

    table = ScoreRow.table
    # `add` fills them in this order (tests/collector/test_score_columns.py holds it to it)
    names: ClassVar[list[str]] = column_names(ScoreRow)

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, call: LlmCallRow, score: Score) -> None:
        """The call-level score of `call`: the values `ScoreRow.from_score` gives its fields
        (source online), in their order."""
        self._rows.append(
            (
                time.time_ns(),
                call.trace_id,
                call.span_id,
                score.name,
                score.value,
                score.label,
                score.passed,
                score.explanation,
                _ONLINE,
                score.evaluator_version,
                "",
                call.experiment_id,
                call.dataset_item_id,
                score.cost_usd,
                score.duration_ms,
                score.error,
                score.direction,
                "call",
                "",
            )
        )

    def take(self) -> list[list[Any]]:
        """The columns of every score added, which are then forgotten here."""
        rows, self._rows = self._rows, []
        return [list(column) for column in zip(*rows, strict=True)]
