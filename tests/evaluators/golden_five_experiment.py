"""An experiment file for `assay eval run`: a 5-item golden set, answered well (4 of 5 right)
or not at all. GOLDEN_ANSWERS=good|bad picks which, GOLDEN_EXPERIMENT names the run."""

from __future__ import annotations

import os

from assay.evaluators import Dataset, evaluate, exact_match

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Chad": "N'Djamena",
}
GOOD = os.environ.get("GOLDEN_ANSWERS", "good") == "good"


def answer(country: str) -> str:
    if not GOOD or country == "Chad":
        return "I don't know"
    return CAPITALS[country]


evaluate(
    Dataset(
        os.environ["GOLDEN_DATASET"], [{"input": c, "expected": a} for c, a in CAPITALS.items()]
    ),
    answer,
    [exact_match],  # uncalled: its default instance
    experiment=os.environ["GOLDEN_EXPERIMENT"],
    emit_events=os.environ.get("GOLDEN_EMIT") == "1",
)
