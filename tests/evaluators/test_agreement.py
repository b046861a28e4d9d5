"""Cohen's kappa and the agreement of a judge with people, on tables worked out by hand."""

from __future__ import annotations

import pytest

from assay.evaluators.agreement import Agreement, cohen_kappa


def test_kappa_on_the_textbook_table() -> None:
    # 50 items: both yes 20, only the first yes 5, only the second yes 10, both no 15.
    # Agreement 0.7, chance 0.5 · 0.6 + 0.5 · 0.4 = 0.5, kappa (0.7 − 0.5) / 0.5 = 0.4.
    assert cohen_kappa(20, 5, 10, 15) == pytest.approx(0.4)


def test_kappa_at_its_ends() -> None:
    assert cohen_kappa(10, 0, 0, 10) == pytest.approx(1.0)
    assert cohen_kappa(0, 10, 10, 0) == pytest.approx(-1.0)
    assert cohen_kappa(0, 0, 0, 0) is None
    assert cohen_kappa(7, 0, 0, 0) is None  # both always pass: chance explains everything


def test_failures_are_no_verdict() -> None:
    row = Agreement(
        "relevance", "v1", both_pass=20, judge_only=5, human_only=10, both_fail=15, judge_failures=9
    )
    assert row.calls == 50 and row.agreement == pytest.approx(0.7)
    assert row.to_dict()["kappa"] == pytest.approx(0.4)
