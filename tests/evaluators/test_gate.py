"""The gate's judgement on runs built here: tolerance, significance where the set allows it,
thresholds, failed items, directions, and arguments checked against the run."""

from __future__ import annotations

import pytest

from assay.evaluators import ExperimentResult, ItemResult, Score
from assay.evaluators.base import LOWER_IS_BETTER
from assay.evaluators.gate import Gate, GateError, MaxDrop, Threshold


def run(
    values: list[float], name: str = "r", direction: str = "higher_is_better"
) -> ExperimentResult:
    items = [
        ItemResult(
            item_id=f"i{index}",
            input=index,
            scores={"acc": Score(name="acc", value=v, passed=v >= 0.5, direction=direction)},
        )
        for index, v in enumerate(values)
    ]
    return ExperimentResult(f"id-{name}", name, "set", "v1", items, {"acc": "1"})


def test_a_drop_beyond_the_default_tolerance_fails_and_a_small_one_passes() -> None:
    base = run([1.0] * 20, "base")
    slightly = run([1.0] * 19 + [0.0])  # 0.05: at the tolerance
    verdict = Gate().judge(slightly, base)
    assert verdict.passed and not verdict.notes
    worse = Gate().judge(run([1.0] * 18 + [0.0, 0.0]), base)
    assert not worse.passed
    assert worse.reasons == [
        "acc mean dropped by 0.100 against base (1.000 → 0.900), more than the tolerance 0.05"
    ]


def test_on_a_small_set_the_tolerance_alone_decides_and_the_gate_says_so() -> None:
    verdict = Gate(max_drops=[MaxDrop.parse("acc=0.5")]).judge(
        run([0.0, 0.0, 1.0, 1.0, 1.0]), run([1.0] * 5, "base")
    )
    assert verdict.passed  # 0.4 within 0.5; no test can speak for 5 items
    assert verdict.notes == [
        "acc mean: 5 items are too few for the sign-flip test to reach p < 0.05 (its smallest "
        "p is 0.0625), so the tolerance alone decides (--max-drop acc=0.5)"
    ]


def test_a_significant_drop_fails_within_a_lenient_tolerance() -> None:
    verdict = Gate(max_drops=[MaxDrop.parse("acc=0.9")]).judge(
        run([0.5] * 12), run([1.0] * 12, "base")
    )
    assert not verdict.passed
    assert verdict.reasons[0].startswith("acc mean is significantly worse than base: -0.500")


def test_pass_rate_tolerance_and_thresholds_and_failed_items() -> None:
    gate = Gate(
        thresholds=[Threshold.parse("acc=0.9"), Threshold.parse("acc.pass_rate=0.5")],
        max_drops=[MaxDrop.parse("acc=1"), MaxDrop.parse("acc.pass_rate=0.1")],
        max_failed_items=0,
    )
    now = run([0.6, 0.6, 0.4, 0.4] * 3)
    now.items[0].status, now.items[0].error = "error", "boom"
    verdict = gate.judge(now, run([0.6] * 12, "base"))
    assert verdict.reasons[0] == "1 item run(s) failed (at most 0 allowed)"
    assert "acc mean 0.491 < 0.9" in verdict.reasons
    assert any(r.startswith("acc pass_rate dropped by 0.545") for r in verdict.reasons)


def test_a_lower_is_better_evaluator_drops_when_it_rises() -> None:
    base = run([0.0] * 8, "base", LOWER_IS_BETTER)
    verdict = Gate().judge(run([0.5] * 8, direction=LOWER_IS_BETTER), base)
    assert verdict.reasons[0].startswith("acc mean dropped by 0.500 against base (0.000 → 0.500)")
    assert (
        Gate()
        .judge(run([0.0] * 8, direction=LOWER_IS_BETTER), run([0.5] * 8, "b", LOWER_IS_BETTER))
        .passed
    )


def test_arguments_are_checked_against_the_run() -> None:
    gate = Gate(thresholds=[Threshold.parse("ac=0.5")], max_drops=[MaxDrop.parse("acx=0.1")])
    with pytest.raises(GateError, match=r"--fail-under ac, --max-drop acx: 'r' does not run it"):
        gate.check_arguments(run([1.0]))
    for text in ("acc", "acc=2", "acc.median=0.5", "=0.5"):
        with pytest.raises(ValueError, match="EVALUATOR"):
            MaxDrop.parse(text)
    with pytest.raises(GateError, match="alpha"):
        Gate(alpha=1.5)


def test_fail_under_reads_a_lower_is_better_mean_on_the_higher_is_better_scale() -> None:
    # A detector that found the bad thing on every item (mean 1) must not reach 0.8; one that
    # found it nowhere (mean 0) must.
    gate = Gate(thresholds=[Threshold.parse("acc=0.8")])
    bad = gate.judge(run([1.0] * 8, direction=LOWER_IS_BETTER), None)
    assert bad.reasons == ["acc mean 1.000 (lower is better: 0.000 on the 0..1 good scale) < 0.8"]
    assert gate.judge(run([0.0] * 8, direction=LOWER_IS_BETTER), None).passed
    assert gate.judge(run([0.1] * 8, direction=LOWER_IS_BETTER), None).passed
    assert not gate.judge(run([0.3] * 8, direction=LOWER_IS_BETTER), None).passed


def test_an_evaluator_that_could_not_judge_an_item_fails_it_like_a_failed_task() -> None:
    # Errors are failures, never values: a judge that failed on half the items leaves a mean
    # of 1.0 over the other half, which must not pass the gate.
    now = run([1.0] * 8)
    for item in now.items[:4]:
        item.scores["acc"] = Score.failure("TimeoutError: the judge did not answer")
    gate = Gate(thresholds=[Threshold.parse("acc=0.8")])
    verdict = gate.judge(now, run([1.0] * 8, "base"))
    assert not verdict.passed
    assert verdict.reasons == [
        "4 item run(s) failed (at most 0 allowed): acc could not judge 4 "
        "(TimeoutError: the judge did not answer)"
    ]
    assert Gate(max_failed_items=4).judge(now, None).passed


def test_failed_tasks_and_evaluator_errors_share_the_failed_item_budget() -> None:
    now = run([1.0] * 6)
    now.items[0].status, now.items[0].error = "error", "RuntimeError: boom"
    now.items[0].scores = {}
    now.items[1].scores["acc"] = Score.failure("ValueError: cannot judge")
    verdict = Gate(max_failed_items=1).judge(now, None)
    assert verdict.reasons == [
        "2 item run(s) failed (at most 1 allowed): 1 task error or timeout; acc could not "
        "judge 1 (ValueError: cannot judge)"
    ]
    assert Gate(max_failed_items=2).judge(now, None).passed


def test_a_run_without_items_fails_the_gate() -> None:
    empty = ExperimentResult("id-e", "e", "set", "v0", [], {"acc": "1"})
    verdict = Gate().judge(empty, None)
    assert not verdict.passed
    assert verdict.reasons == ["the run has no item: the dataset is empty, nothing was judged"]
    assert not Gate().judge(empty, run([1.0] * 4, "base")).passed


def test_a_baseline_on_another_dataset_version_is_noted() -> None:
    base = run([1.0] * 8, "base")
    now = run([1.0] * 7)
    now.dataset_version = "v2"
    verdict = Gate().judge(now, base)
    assert verdict.passed
    assert verdict.notes == [
        "the baseline base ran dataset set version v1, this run version v2: compared on the "
        "7 items both ran (1 only in the baseline, 0 only in this run)"
    ]


def test_a_baseline_scored_by_another_version_of_an_evaluator_is_noted() -> None:
    base = run([1.0] * 8, "base")
    now = run([1.0] * 8)
    now.evaluators = {"acc": "2"}
    verdict = Gate().judge(now, base)
    assert verdict.passed
    assert verdict.notes == [
        "acc: the baseline base scored with version 1, this run with 2: a change of the "
        "evaluator moves its scores too"
    ]
