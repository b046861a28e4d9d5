"""The comparison statistics, checked against computations written out independently here."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from assay.evaluators.comparison import (
    EXACT_LIMIT,
    compare_score_tables,
    compare_scores,
    paired_bootstrap_ci,
    sign_flip_p_value,
)


def brute_force_sign_flip(diffs: list[float]) -> float:
    """Every assignment of signs to the differences; the share at least as extreme."""
    observed = abs(sum(diffs))
    extreme = 0
    total = 0
    for signs in itertools.product((1, -1), repeat=len(diffs)):
        total += 1
        if abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - 1e-12:
            extreme += 1
    return extreme / total


def python_bootstrap(diffs: list[float], rounds: int = 20_000) -> tuple[float, float]:
    rng = random.Random(7)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


@pytest.mark.parametrize(
    "diffs",
    [
        [1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, -1],
        [0.5, -0.25, 0.75, 0.1, 0.3, -0.6, 0.2],
        [0.2, 0.2, -0.2, -0.2],
        [1.0],
    ],
)
def test_the_exact_sign_flip_test_matches_brute_force(diffs: list[float]) -> None:
    assert sign_flip_p_value(diffs) == pytest.approx(brute_force_sign_flip(diffs))


def test_zero_differences_do_not_count_and_no_difference_gives_p_one() -> None:
    assert sign_flip_p_value([0.0, 0.0, 1.0, 1.0]) == pytest.approx(brute_force_sign_flip([1, 1]))
    assert sign_flip_p_value([0.0, 0.0]) == 1.0
    assert sign_flip_p_value([]) == 1.0


def test_many_differences_use_monte_carlo_close_to_the_exact_answer() -> None:
    rng = random.Random(3)
    diffs = [rng.choice((1.0, -1.0, 1.0)) for _ in range(EXACT_LIMIT + 6)]
    # With ±1 differences the exact p-value is a binomial tail: count the positives.
    n, positives = len(diffs), sum(d > 0 for d in diffs)
    k = max(positives, n - positives)
    exact = min(1.0, 2 * sum(_choose(n, j) for j in range(k, n + 1)) / 2**n)
    assert sign_flip_p_value(diffs, permutations=40_000) == pytest.approx(exact, abs=0.01)


def _choose(n: int, k: int) -> int:
    return len(list(itertools.combinations(range(n), k)))


def test_the_bootstrap_interval_agrees_with_a_plain_python_bootstrap() -> None:
    diffs = [0.9, 0.1, 0.4, -0.3, 0.6, 0.0, 0.8, 0.2, -0.1, 0.5, 0.7, 0.3]
    low, high = paired_bootstrap_ci(diffs)
    reference_low, reference_high = python_bootstrap(diffs)
    assert low == pytest.approx(reference_low, abs=0.03)
    assert high == pytest.approx(reference_high, abs=0.03)
    assert low < statistics.fmean(diffs) < high


def test_the_bootstrap_is_reproducible_and_degenerate_for_constant_differences() -> None:
    diffs = [0.3, -0.2, 0.5, 0.1]
    assert paired_bootstrap_ci(diffs, seed=1) == paired_bootstrap_ci(diffs, seed=1)
    assert paired_bootstrap_ci([0.25] * 6) == (0.25, 0.25)
    with pytest.raises(ValueError, match="no paired differences"):
        paired_bootstrap_ci([])


def test_items_are_paired_by_id_and_sorted_into_improved_regressed_unchanged() -> None:
    a = {"x": 0.0, "y": 1.0, "z": 0.5, "only-a": 1.0}
    b = {"x": 1.0, "y": 0.0, "z": 0.5, "only-b": 0.0}
    result = compare_scores(a, b, name="m")
    assert result.n == 3
    assert result.improved == ("x",) and result.regressed == ("y",) and result.unchanged == ("z",)
    assert result.only_a == ("only-a",) and result.only_b == ("only-b",)
    assert result.delta == pytest.approx(0.0)
    assert result.mean_a == pytest.approx(0.5) and result.mean_b == pytest.approx(0.5)
    assert result.verdict() == "no significant change"


def test_a_clear_improvement_is_significant_and_called_better() -> None:
    a = {str(i): 0.0 for i in range(10)}
    b = {str(i): 1.0 for i in range(10)}
    result = compare_scores(a, b)
    assert result.delta == 1.0
    assert result.p_value == pytest.approx(2 / 2**10)
    assert result.verdict() == "better"
    assert compare_scores(b, a).verdict() == "worse"


def test_tables_compare_the_evaluators_both_runs_have() -> None:
    a = {"exact": {"1": 0.0, "2": 1.0}, "only_in_a": {"1": 1.0}}
    b = {"exact": {"1": 1.0, "2": 1.0}, "only_in_b": {"1": 1.0}}
    result = compare_score_tables(a, b)
    assert list(result) == ["exact"]
    assert result["exact"].improved == ("1",)


def test_no_common_items_gives_no_numbers() -> None:
    result = compare_scores({"a": 1.0}, {"b": 1.0})
    assert result.n == 0 and result.delta is None and result.ci is None and result.p_value is None


def test_runs_of_different_dataset_versions_say_so_and_count_what_only_one_ran() -> None:
    from assay.evaluators import ExperimentResult, ItemResult, Score, compare

    def run(name: str, version: str, ids: list[str]) -> ExperimentResult:
        items = [
            ItemResult(item_id=i, input=i, output=i, scores={"ok": Score(name="ok", value=1.0)})
            for i in ids
        ]
        return ExperimentResult(name, name, "golden", version, items, {"ok": "1"})

    a, b = run("a", "v1", ["q0", "q1", "q2"]), run("b", "v2", ["q1", "q2", "q3", "q4"])
    note = (
        "A ran dataset golden version v1, B version v2: compared on the 2 items both ran "
        "(1 only in A, 2 only in B)"
    )
    comparison = compare(a, b)
    assert comparison.dataset_note() == note
    assert note in str(comparison)
    assert comparison.to_dict()["dataset_note"] == note
    assert compare(a, run("c", "v1", ["q0", "q1", "q2"])).dataset_note() == ""


def test_runs_scored_by_different_evaluator_versions_say_so() -> None:
    from assay.evaluators import ExperimentResult, ItemResult, Score, compare

    def run(name: str, version: str) -> ExperimentResult:
        items = [ItemResult(item_id="q", input="q", scores={"ok": Score(name="ok", value=1.0)})]
        return ExperimentResult(name, name, "golden", "v1", items, {"ok": version})

    comparison = compare(run("a", "h1"), run("b", "h2"))
    note = "evaluator versions differ between A and B (ok h1 → h2): part of a delta may be theirs"
    assert comparison.evaluator_note() == note
    assert note in str(comparison)
    assert compare(run("a", "h1"), run("c", "h1")).evaluator_note() == ""


def test_an_evaluator_only_one_run_has_is_named_not_dropped_silently() -> None:
    from assay.evaluators import ExperimentResult, ItemResult, Score, compare

    def run(name: str, evaluators: list[str]) -> ExperimentResult:
        scores = {n: Score(name=n, value=1.0) for n in evaluators}
        items = [ItemResult(item_id="q", input="q", scores=scores)]
        return ExperimentResult(name, name, "golden", "v1", items, dict.fromkeys(evaluators, "1"))

    comparison = compare(run("a", ["ok", "old"]), run("b", ["ok", "new"]))
    assert list(comparison.evaluators) == ["ok"]
    assert (
        comparison.evaluator_note() == "only A ran old: not compared; only B ran new: not compared"
    )


def test_a_run_that_did_not_complete_is_said_to_be_partial() -> None:
    from assay.evaluators import ExperimentResult, ItemResult, Score, compare

    def run(name: str, status: str) -> ExperimentResult:
        items = [ItemResult(item_id="q", input="q", scores={"ok": Score(name="ok", value=1.0)})]
        return ExperimentResult(name * 8, name, "golden", "v1", items, {"ok": "1"}, status=status)

    comparison = compare(run("a", "completed"), run("b", "cancelled"))
    note = "B (b bbbbbbbb) is cancelled: its items are only those it had run"
    assert comparison.status_note() == note
    assert note in str(comparison)
    assert compare(run("a", "completed"), run("c", "completed")).status_note() == ""


def test_no_item_in_common_is_not_called_no_significant_change() -> None:
    """Runs of two different datasets share no item: there is nothing to judge, and the verdict
    says so rather than 'no significant change' (which reads as 'compared, the same')."""
    result = compare_scores({"capital-1": 1.0, "capital-2": 0.0}, {"sum-1": 1.0}, name="m")
    assert (result.n, result.delta) == (0, None)
    assert result.verdict() == "not compared: no item scored in both runs"
