"""The CI gate's judgement of a run: absolute thresholds, a tolerance on the drop from a
baseline run, and significance where the set is large enough for it.

- `--fail-under NAME=0.8` (`NAME.pass_rate=0.8`): the run's mean (pass rate) must reach it.
- Against a baseline run, an evaluator fails when its mean (or, with `--max-drop
  NAME.pass_rate=X`, its pass rate) dropped by more than its tolerance (`--max-drop NAME=X`,
  default `DEFAULT_MAX_DROP`), or when the paired sign-flip test finds it significantly worse
  at `alpha`. On n items that test can never go below p = 2^(1-n) (fewer than 6 items at
  0.05): the gate then says so and the tolerance alone decides.
- Item runs that could not be judged count against `--max-failed-items`: the task failed
  (error, timeout), or an evaluator failed on its output (an error score is a failure, never
  a value: leaving it out of the mean would let a judge that failed on most items pass).
- A run without items fails: a gate that judged nothing cannot vouch for anything.
- `--fail-under` reads a mean on the higher-is-better scale (`1 - mean` for an evaluator that
  is lower-is-better), as the UI's "score below" filter does; a pass rate needs no turning.

Pure functions of two `ExperimentResult`s: `assay eval run` reads the runs and stores the
verdict; a notebook can call `Gate(...).judge(run, baseline)` the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from assay.evaluators.base import HIGHER_IS_BETTER
from assay.evaluators.comparison import (
    changed_evaluators,
    compare_scores,
    dataset_difference,
    reaches_alpha,
    run_noise,
    smallest_p_value,
)
from assay.evaluators.results import ExperimentResult

__all__ = ["DEFAULT_MAX_DROP", "Gate", "GateError", "GateVerdict", "MaxDrop", "Threshold"]

# The drop from the baseline accepted when no --max-drop names the evaluator: one item in
# twenty going from right to wrong. Small sets need it, since no test can speak for them.
DEFAULT_MAX_DROP = 0.05
METRICS = ("mean", "pass_rate")
_SLACK = 1e-9  # float noise is not a drop


class GateError(ValueError):
    """The gate cannot judge with these arguments (an unknown evaluator, an unknown baseline);
    raised before any item runs."""


def _parse(text: str, option: str, example: str) -> tuple[str, str, float]:
    name, sep, value = text.partition("=")
    evaluator, _, metric = name.strip().partition(".")
    metric = metric or "mean"
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or not evaluator or metric not in METRICS or not 0 <= number <= 1:
        raise ValueError(
            f"{option} {text!r}: use {example} (its mean) or EVALUATOR.pass_rate=X, X in [0, 1]"
        )
    return evaluator, metric, number


@dataclass(frozen=True)
class Threshold:
    """`--fail-under`: the run's mean (or pass rate) of an evaluator must reach `minimum`."""

    evaluator: str
    metric: str  # mean | pass_rate
    minimum: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        return cls(*_parse(text, "--fail-under", "EVALUATOR=0.8"))


@dataclass(frozen=True)
class MaxDrop:
    """`--max-drop`: the most an evaluator's mean (or pass rate) may fall from the baseline."""

    evaluator: str
    metric: str
    tolerance: float

    @classmethod
    def parse(cls, text: str) -> MaxDrop:
        return cls(*_parse(text, "--max-drop", "EVALUATOR=0.05"))


@dataclass
class GateVerdict:
    """What the gate found: `passed`, the `reasons` it failed, and `notes` on how it judged."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_id: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "failed"

    def to_dict(self) -> dict[str, Any]:
        """Stored with the run (`experiments.gate`)."""
        return asdict(self)


@dataclass
class Gate:
    thresholds: list[Threshold] = field(default_factory=list)
    max_drops: list[MaxDrop] = field(default_factory=list)
    alpha: float = 0.05
    max_failed_items: int = 0
    baseline: str | None = None  # what the baseline was asked as (a name or a run id)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise GateError(f"--alpha must be between 0 and 1, not {self.alpha}")
        if self.max_failed_items < 0:
            raise GateError("--max-failed-items cannot be negative")

    def check_arguments(self, run: ExperimentResult) -> None:
        """Every evaluator the options name is one the run has (before any item runs)."""
        named = [("--fail-under", t.evaluator) for t in self.thresholds]
        named += [("--max-drop", d.evaluator) for d in self.max_drops]
        unknown = [(option, name) for option, name in named if name not in run.evaluators]
        if unknown:
            listed = ", ".join(f"{option} {name}" for option, name in unknown)
            runs = ", ".join(run.evaluators) or "no evaluator"
            raise GateError(f"{listed}: {run.name!r} does not run it (it runs {runs})")

    def tolerance(self, evaluator: str, metric: str) -> float | None:
        for drop in self.max_drops:
            if (drop.evaluator, drop.metric) == (evaluator, metric):
                return drop.tolerance
        return DEFAULT_MAX_DROP if metric == "mean" else None

    def judge(self, run: ExperimentResult, baseline: ExperimentResult | None) -> GateVerdict:
        verdict = GateVerdict(passed=True, baseline_id=baseline.experiment_id if baseline else "")
        self._failed_items(run, verdict)
        self._thresholds(run, verdict)
        if baseline is not None:
            self._against(run, baseline, verdict)
        verdict.passed = not verdict.reasons
        return verdict

    def _failed_items(self, run: ExperimentResult, verdict: GateVerdict) -> None:
        if not run.items:
            verdict.checks.append({"check": "items", "value": 0, "passed": False})
            verdict.reasons.append("the run has no item: the dataset is empty, nothing was judged")
            return
        tasks = len(run.failed_items)
        # Per evaluator: the item runs it scored with an error (the task having succeeded).
        unjudged: dict[str, list[str]] = {}
        for item in run.items:
            if item.failed:
                continue
            for name, score in item.scores.items():
                if score.error:
                    unjudged.setdefault(name, []).append(score.error)
        failed = tasks + sum(
            not item.failed and any(score.error for score in item.scores.values())
            for item in run.items
        )
        verdict.checks.append(
            {
                "check": "failed_items",
                "value": failed,
                "most": self.max_failed_items,
                "task_failures": tasks,
                "evaluator_errors": {name: len(errors) for name, errors in unjudged.items()},
            }
        )
        if failed > self.max_failed_items:
            reason = f"{failed} item run(s) failed (at most {self.max_failed_items} allowed)"
            if unjudged:  # say which evaluators, and what they raised most
                parts = [f"{tasks} task error or timeout"] if tasks else []
                for name, errors in unjudged.items():
                    common = max(set(errors), key=errors.count)
                    parts.append(f"{name} could not judge {len(errors)} ({common})")
                reason += ": " + "; ".join(parts)
            verdict.reasons.append(reason)

    def _thresholds(self, run: ExperimentResult, verdict: GateVerdict) -> None:
        summary = run.summary
        for threshold in self.thresholds:
            value = summary[threshold.evaluator][threshold.metric]
            turned = threshold.metric == "mean" and run.direction(threshold.evaluator) != (
                HIGHER_IS_BETTER
            )
            good = None if value is None else 1.0 - value if turned else value
            ok = good is not None and good >= threshold.minimum - _SLACK
            verdict.checks.append(
                {
                    "check": "fail_under",
                    **asdict(threshold),
                    "value": value,
                    "good_value": good,
                    "passed": ok,
                }
            )
            if not ok:
                shown = "–" if value is None else f"{value:.3f}"
                if turned and good is not None:
                    shown += f" (lower is better: {good:.3f} on the 0..1 good scale)"
                verdict.reasons.append(
                    f"{threshold.evaluator} {threshold.metric} {shown} < {threshold.minimum}"
                )

    def _against(
        self, run: ExperimentResult, baseline: ExperimentResult, verdict: GateVerdict
    ) -> None:
        label = self.baseline or baseline.name
        names = (f"the baseline {label}", "this run")
        if note := dataset_difference(baseline, run, names, ("the baseline", "this run")):
            verdict.notes.append(note)
        for name, (version_then, version_now) in changed_evaluators(baseline, run).items():
            verdict.notes.append(
                f"{name}: the baseline {label} scored with version {version_then}, this run "
                f"with {version_now}: a change of the evaluator moves its scores too"
            )
        for name in run.evaluators:
            if name not in baseline.evaluators:
                verdict.notes.append(f"{name}: the baseline {label} did not run it; not compared")
                continue
            for metric in METRICS:
                tolerance = self.tolerance(name, metric)
                if tolerance is None:
                    continue
                self._compare(run, baseline, name, metric, tolerance, label, verdict)

    def _compare(
        self,
        run: ExperimentResult,
        baseline: ExperimentResult,
        name: str,
        metric: str,
        tolerance: float,
        label: str,
        verdict: GateVerdict,
    ) -> None:
        values = ExperimentResult.values if metric == "mean" else ExperimentResult.pass_values
        compared = compare_scores(
            values(baseline, name), values(run, name), name=name, direction=run.direction(name)
        )
        what = f"{name} {metric}"
        if compared.n == 0 or compared.improvement is None:
            verdict.notes.append(f"{what}: no item scored in both runs; not compared")
            return
        drop = -compared.improvement
        noise = run_noise(baseline, run, name, metric)
        reachable = reaches_alpha(compared.n, self.alpha)
        significant = reachable and compared.significant(self.alpha) and drop > 0
        beyond = drop > tolerance + _SLACK
        verdict.checks.append(
            {
                "check": "baseline",
                "evaluator": name,
                "metric": metric,
                "baseline": compared.mean_a,
                "value": compared.mean_b,
                "drop": drop,
                "tolerance": tolerance,
                "p_value": compared.p_value,
                "significance_possible": reachable,
                "n": compared.n,
                "noise": noise,
                "passed": not (beyond or significant),
            }
        )
        moved = f"{compared.mean_a:.3f} → {compared.mean_b:.3f}"
        if beyond:
            hint = (
                f"; that is within the run-to-run noise (±{noise:.3f}): run with more "
                "repetitions or allow more"
                if noise is not None and drop <= 2 * noise
                else ""
            )
            verdict.reasons.append(
                f"{what} dropped by {drop:.3f} against {label} ({moved}), more than the "
                f"tolerance {tolerance:g}{hint}"
            )
        elif significant:
            low, high = compared.ci or (float("nan"), float("nan"))
            verdict.reasons.append(
                f"{what} is significantly worse than {label}: {compared.delta:+.3f} ({moved}, "
                f"95% CI {low:+.3f}..{high:+.3f}, p={compared.p_value:.3g} < {self.alpha})"
            )
        if not reachable:
            verdict.notes.append(
                f"{what}: {compared.n} items are too few for the sign-flip test to reach "
                f"p < {self.alpha} (its smallest p is {smallest_p_value(compared.n):.3g}), so "
                f"the tolerance alone decides (--max-drop {name}"
                f"{'' if metric == 'mean' else '.pass_rate'}={tolerance:g})"
            )
