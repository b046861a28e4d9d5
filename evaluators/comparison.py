"""Comparing two experiments item by item: paired differences, bootstrap interval, sign-flip test.

The statistics are pure functions of per-item scores, so the UI calls `compare_score_tables`
on what it reads from the store, and `compare(a, b)` on two runs gives the same numbers.

- `delta`: mean over the items scored in both runs of (score in B − score in A).
- `ci`: paired bootstrap percentile interval of that mean (items resampled with replacement).
- `p_value`: two-sided paired sign-flip (permutation) test of "no difference": exact over all
  2^m sign assignments of the m non-zero differences when m ≤ 16, else Monte Carlo. With n
  items it can never go below 2^(1-n): on fewer than 6 items no difference is significant at
  0.05 (`reaches_alpha` says so).
- `noise`: with repetitions, the standard deviation that run-to-run chance alone gives the
  delta (from the spread between each run's repetitions). A run compared with itself reports
  this noise floor: the delta a second run of the same setup would show by chance.

Runs with repetitions are compared on per-item means. Directions are respected: for an
evaluator whose scores are lower-is-better, a negative delta is the better one.
"""

from __future__ import annotations

import html
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from assay.evaluators.base import HIGHER_IS_BETTER
from assay.evaluators.formatting import money, money_of_calls, plain

if TYPE_CHECKING:
    import pandas
    from rich.console import RenderableType

    from assay.evaluators.client import CollectorClient
    from assay.evaluators.results import ExperimentResult

__all__ = [
    "Comparison",
    "ItemChange",
    "PairedComparison",
    "changed_evaluators",
    "compare",
    "compare_score_tables",
    "compare_scores",
    "items_in_common",
    "paired_bootstrap_ci",
    "reaches_alpha",
    "sign_flip_p_value",
    "smallest_p_value",
]

EXACT_LIMIT = 16  # non-zero differences up to which the sign-flip test enumerates every sign
_TIE = 1e-9  # differences smaller than this are "unchanged"
_CHUNK_CELLS = 2_000_000  # bound on the resample matrix held at once


def paired_bootstrap_ci(
    diffs: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference."""
    import numpy as np  # here, not at import: `assay.evaluators` stays light to import

    values = np.asarray(diffs, dtype=float)
    if values.size == 0:
        raise ValueError("no paired differences")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // values.size)
    means = []
    remaining = resamples
    while remaining > 0:
        rows = min(per_chunk, remaining)
        picks = rng.integers(0, values.size, size=(rows, values.size))
        means.append(values[picks].mean(axis=1))
        remaining -= rows
    all_means = np.concatenate(means)
    tail = (1 - confidence) / 2
    low, high = np.quantile(all_means, [tail, 1 - tail])
    return float(low), float(high)


def sign_flip_p_value(diffs: Sequence[float], permutations: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip test of a zero mean difference."""
    import numpy as np

    values = np.asarray([d for d in diffs if abs(d) > _TIE], dtype=float)
    m = values.size
    if m == 0:
        return 1.0
    observed = abs(values.sum()) - 1e-12  # ties with the observed sum count as extreme
    if m <= EXACT_LIMIT:
        codes = np.arange(2**m, dtype=np.int64)[:, None]
        signs = 1 - 2 * ((codes >> np.arange(m)) & 1)
        sums = np.abs(signs @ values)
        return float((sums >= observed).mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    per_chunk = max(1, _CHUNK_CELLS // m)
    remaining = permutations
    while remaining > 0:
        rows = min(per_chunk, remaining)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, m))
        extreme += int((np.abs(signs @ values) >= observed).sum())
        remaining -= rows
    # The observed assignment is one of the possible ones: (k + 1) / (N + 1) is never 0.
    return (extreme + 1) / (permutations + 1)


def smallest_p_value(n: int, permutations: int = 20_000) -> float:
    """The smallest p-value the sign-flip test can give on n paired items: 2^(1-n) when it
    enumerates every sign (n ≤ 16), else 1/(permutations + 1)."""
    if n <= 0:
        return 1.0
    return 2.0 ** (1 - n) if n <= EXACT_LIMIT else 1 / (permutations + 1)


def reaches_alpha(n: int, alpha: float) -> bool:
    """Whether the sign-flip test on n items can find anything significant at `alpha`."""
    return smallest_p_value(n) < alpha


@dataclass(frozen=True)
class PairedComparison:
    """One evaluator, run A against run B, over the items scored in both."""

    name: str
    n: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    improved: tuple[str, ...]
    regressed: tuple[str, ...]
    unchanged: tuple[str, ...]
    only_a: tuple[str, ...] = ()  # scored in A only (failed or missing in B), and vice versa
    only_b: tuple[str, ...] = ()
    direction: str = HIGHER_IS_BETTER
    noise: float | None = None  # the delta's standard deviation from run-to-run chance
    same_run: bool = False  # A and B are one run: the comparison is its noise floor

    @property
    def improvement(self) -> float | None:
        """The delta turned so that positive is better, whatever the direction."""
        if self.delta is None:
            return None
        return self.delta if self.direction == HIGHER_IS_BETTER else -self.delta

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value is not None and self.p_value < alpha

    def within_noise(self) -> bool:
        """The delta is inside two noise standard deviations (about 95% of chance moves)."""
        return (
            self.noise is not None and self.delta is not None and abs(self.delta) <= 2 * self.noise
        )

    def verdict(self, alpha: float = 0.05) -> str:
        """'better', 'worse', 'within noise', 'no significant change' (B relative to A),
        'same run (noise ±x)' for a run compared with itself, or 'not compared: ...' when no
        item has a score in both."""
        if self.same_run:
            floor = (
                "unknown: run it with repetitions" if self.noise is None else f"±{self.noise:.3f}"
            )
            return f"same run (noise {floor})"
        if self.n == 0:  # runs of different datasets: 'no significant change' would read as judged
            return "not compared: no item scored in both runs"
        improvement = self.improvement
        if improvement is not None and self.significant(alpha) and not self.within_noise():
            return "better" if improvement > 0 else "worse"
        if self.within_noise():
            return "within noise"
        return "no significant change"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "delta": self.delta,
            "ci": list(self.ci) if self.ci else None,
            "p_value": self.p_value,
            "improved": list(self.improved),
            "regressed": list(self.regressed),
            "unchanged": list(self.unchanged),
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
            "direction": self.direction,
            "noise": self.noise,
            "same_run": self.same_run,
        }


def compare_scores(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    name: str = "",
    confidence: float = 0.95,
    resamples: int = 10_000,
    permutations: int = 20_000,
    seed: int = 0,
    direction: str = HIGHER_IS_BETTER,
) -> PairedComparison:
    """Compare one evaluator's per-item scores (item id → value in [0, 1]) of runs A and B."""
    common = sorted(set(a) & set(b))
    diffs = [float(b[i]) - float(a[i]) for i in common]
    improved = tuple(i for i, d in zip(common, diffs, strict=True) if d > _TIE)
    regressed = tuple(i for i, d in zip(common, diffs, strict=True) if d < -_TIE)
    unchanged = tuple(i for i, d in zip(common, diffs, strict=True) if abs(d) <= _TIE)
    only_a = tuple(sorted(set(a) - set(b)))
    only_b = tuple(sorted(set(b) - set(a)))
    if not common:
        return PairedComparison(
            name, 0, None, None, None, None, None, (), (), (), only_a, only_b, direction
        )
    if direction != HIGHER_IS_BETTER:  # improved and regressed follow the direction
        improved, regressed = regressed, improved
    return PairedComparison(
        name=name,
        n=len(common),
        mean_a=statistics.fmean(a[i] for i in common),
        mean_b=statistics.fmean(b[i] for i in common),
        delta=statistics.fmean(diffs),
        ci=paired_bootstrap_ci(diffs, confidence, resamples, seed),
        p_value=sign_flip_p_value(diffs, permutations, seed),
        improved=improved,
        regressed=regressed,
        unchanged=unchanged,
        only_a=only_a,
        only_b=only_b,
        direction=direction,
    )


def compare_score_tables(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    *,
    directions: Mapping[str, str] | None = None,
    **options: Any,
) -> dict[str, PairedComparison]:
    """Per evaluator name, the comparison of two runs' scores (evaluator → item id → value).

    Evaluators present in only one run are left out: there is nothing to pair.
    `directions` gives each evaluator's direction (higher-is-better when missing).
    """
    directions = directions or {}
    return {
        name: compare_scores(
            a[name],
            b[name],
            name=name,
            direction=directions.get(name, HIGHER_IS_BETTER),
            **options,
        )
        for name in sorted(set(a) & set(b))
    }


def run_noise(
    a: ExperimentResult, b: ExperimentResult, name: str, metric: str = "mean"
) -> float | None:
    """The standard deviation chance alone gives the delta of one evaluator between two runs,
    from each run's spread between repetitions (a run's mean over k repetitions varies by
    its noise / √k). A run with itself: what a second run of the same setup would differ by.
    None unless both runs (or the one) have repetitions."""
    noise_a = a.noise(name, metric)
    if a.experiment_id == b.experiment_id:
        return None if noise_a is None else noise_a * math.sqrt(2 / a.repetitions)
    noise_b = b.noise(name, metric)
    if noise_a is None or noise_b is None:
        return None
    return math.sqrt(noise_a**2 / a.repetitions + noise_b**2 / b.repetitions)


# --- two experiments --------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemChange:
    """An item whose score moved on at least one evaluator: both outputs side by side."""

    item_id: str
    input: Any
    expected: Any
    output_a: str
    output_b: str
    scores_a: dict[str, float]
    scores_b: dict[str, float]


@dataclass
class Comparison:
    """Run B against run A: per evaluator `evaluators[name]`, and the changed items."""

    a: ExperimentResult
    b: ExperimentResult
    evaluators: dict[str, PairedComparison]
    changes: list[ItemChange] = field(default_factory=list)
    alpha: float = 0.05

    @property
    def improved(self) -> set[str]:
        return {i for c in self.evaluators.values() for i in c.improved}

    @property
    def regressed(self) -> set[str]:
        return {i for c in self.evaluators.values() for i in c.regressed}

    def regressions(self) -> list[str]:
        """Evaluators on which B is significantly worse than A."""
        return [n for n, c in self.evaluators.items() if c.verdict(self.alpha) == "worse"]

    @property
    def same_run(self) -> bool:
        return self.a.experiment_id == self.b.experiment_id

    def _has_noise(self) -> bool:
        return any(c.noise is not None for c in self.evaluators.values())

    def _columns(self) -> list[str]:
        columns = ["evaluator", "A", "B", "delta", "95% CI", "p", "", "↑", "↓", "=", "n"]
        if self._has_noise():
            columns.insert(4, "noise ±")
        return columns

    def _cells(self, c: PairedComparison) -> list[str]:
        cells = [
            _num(c.mean_a),
            _num(c.mean_b),
            _signed(c.delta),
            f"[{_signed(c.ci[0])}, {_signed(c.ci[1])}]" if c.ci else "–",
            _num(c.p_value, 3),
            c.verdict(self.alpha),
            str(len(c.improved)),
            str(len(c.regressed)),
            str(len(c.unchanged)),
            str(c.n),
        ]
        if self._has_noise():
            cells.insert(3, _num(c.noise))
        return cells

    def task_rows(self) -> list[tuple[str, str, str]]:
        """The task's cost, tokens and latency in A and in B (what a prompt change costs)."""
        a, b = self.a.task_summary, self.b.task_summary

        def tokens(t: Any) -> int | None:
            if t.input_tokens is None and t.output_tokens is None:
                return None
            return (t.input_tokens or 0) + (t.output_tokens or 0)

        return [
            ("cost", _cost(a), _cost(b)),
            ("tokens", _count(tokens(a)), _count(tokens(b))),
            ("latency p50 ms", _num(a.latency_p50_ms, 1), _num(b.latency_p50_ms, 1)),
            ("latency p95 ms", _num(a.latency_p95_ms, 1), _num(b.latency_p95_ms, 1)),
            ("failed items", str(a.failed), str(b.failed)),
        ]

    def cost_note(self) -> str:
        """Whether the costs can tell which run is cheaper ("" when both are whole): a cost
        that leaves out unpriced calls that succeeded (or did not count them) is a lower bound,
        so it is cheaper than the other side's only in appearance."""
        a, b = self.a.task_summary, self.b.task_summary
        short = [label for label, task in (("A", a), ("B", b)) if task.lower_bound]
        if not short:
            return ""
        note = "; ".join(
            f"{label}: {task.cost_note}" for label, task in (("A", a), ("B", b)) if task.cost_note
        )
        if len(short) == 1:
            bound, other = (a, b) if short == ["A"] else (b, a)
            low, high = bound.cost_usd, other.cost_usd
            if low is not None and high is not None and low >= high:  # more already, more still
                return f"{note}; {short[0]} cost more all the same"
        return f"{note}; which run costs less is not known"

    def dataset_note(self) -> str:
        """What differs between the datasets the two runs ran ("" when they ran the same
        version): the comparison then covers only the items both have, and an item whose
        expected output was edited was scored against different answers."""
        return dataset_difference(self.a, self.b, ("A", "B"), ("A", "B"))

    def status_note(self) -> str:
        """Which of the two runs did not complete ("" when both did): a run still going, or
        stopped, has only some of its items, and `compare("name", ...)` takes a name's latest
        run whatever its state."""
        unfinished = [
            f"{label} ({run.name} {run.experiment_id[:8]}) is {run.status or 'of unknown state'}"
            for label, run in (("A", self.a), ("B", self.b))
            if run.status != "completed"
        ]
        if not unfinished:
            return ""
        return "; ".join(unfinished) + ": its items are only those it had run"

    def evaluator_note(self) -> str:
        """The evaluators both runs have whose version differs, and those only one run has
        ("" when none): a changed evaluator (its code, its judge model or prompt) moves its
        scores too, whatever the task did; one only a run has is not compared."""
        notes = []
        changed = changed_evaluators(self.a, self.b)
        if changed:
            listed = ", ".join(f"{name} {va} → {vb}" for name, (va, vb) in changed.items())
            notes.append(
                f"evaluator versions differ between A and B ({listed}): part of a delta may be "
                "theirs"
            )
        for run, other, label in ((self.a, self.b, "A"), (self.b, self.a, "B")):
            alone = [name for name in run.evaluators if name not in other.evaluators]
            if alone:
                notes.append(f"only {label} ran {', '.join(alone)}: not compared")
        return "; ".join(notes)

    def noise_note(self) -> str:
        if self.same_run:
            if self.a.repetitions < 2:
                return (
                    "A run compared with itself: with one repetition its noise floor is unknown; "
                    "run it with repetitions=k to measure it."
                )
            return (
                f"A run compared with itself ({self.a.repetitions} repetitions): the noise column "
                "is its noise floor, the delta a second run of the same setup would show by chance."
            )
        if self._has_noise():
            return "noise: the delta's standard deviation from run-to-run chance (repetitions)."
        return ""

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (`assay experiments compare --format json`)."""
        return {
            "a": {"experiment_id": self.a.experiment_id, "name": self.a.name},
            "b": {"experiment_id": self.b.experiment_id, "name": self.b.name},
            "alpha": self.alpha,
            "same_run": self.same_run,
            "dataset_note": self.dataset_note(),
            "status_note": self.status_note(),
            "evaluator_note": self.evaluator_note(),
            "cost_note": self.cost_note(),
            "evaluators": {
                name: {**c.to_dict(), "verdict": c.verdict(self.alpha)}
                for name, c in self.evaluators.items()
            },
            "task": {"a": self.a.task_summary.to_dict(), "b": self.b.task_summary.to_dict()},
            "changed_items": [change.item_id for change in self.changes],
        }

    def to_pandas(self) -> pandas.DataFrame:
        import pandas as pd

        rows = []
        for comparison in self.evaluators.values():
            row = comparison.to_dict()
            row["ci_low"], row["ci_high"] = comparison.ci or (None, None)
            row["verdict"] = comparison.verdict(self.alpha)
            for key in ("improved", "regressed", "unchanged", "only_a", "only_b"):
                row[key] = len(row[key])
            del row["ci"]
            rows.append(row)
        return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame()

    def _title(self) -> str:
        if self.a.name == self.b.name:  # two runs of one experiment: tell them apart by id
            return (
                f"{self.b.name} {self.b.experiment_id[:8]} (B) vs "
                f"{self.a.name} {self.a.experiment_id[:8]} (A)"
            )
        return f"{self.b.name} (B) vs {self.a.name} (A)"

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        title = plain(self._title())  # run names are anyone's text
        table = Table(title=title, title_justify="left", header_style="bold")
        for column in self._columns():
            table.add_column(column, justify="left" if column in ("evaluator", "") else "right")
        verdict_at = self._columns().index("") - 1
        for name, c in self.evaluators.items():
            verdict = c.verdict(self.alpha)
            style = {"better": "green", "worse": "red"}.get(verdict, "dim")
            cells: list[str | Text] = [plain(name), *self._cells(c)]
            cells[verdict_at + 1] = Text(verdict, style=style)
            delta_at = self._columns().index("delta")
            cells[delta_at] = Text(str(cells[delta_at]), style=style)
            table.add_row(*cells)
        parts: list[RenderableType] = [table]
        for note in (self.status_note(), self.dataset_note(), self.evaluator_note()):
            if note:
                parts.append(Text(note, style="yellow"))
        if note := self.noise_note():
            parts.append(Text(note, style="dim"))
        task = Table(title="Task", title_justify="left", header_style="bold")
        for column in ("", "A", "B"):
            task.add_column(column, justify="left" if not column else "right")
        for row in self.task_rows():
            task.add_row(*row)
        parts.append(task)
        if note := self.cost_note():
            parts.append(Text(note, style="yellow"))
        if self.changes:
            changes = Table(title="Changed items", title_justify="left", header_style="bold")
            for column in ("item", "input", "expected", "A output", "B output", "scores A → B"):
                changes.add_column(column, overflow="fold")
            for change in self.changes:
                changes.add_row(
                    *(
                        plain(cell)  # stored text: no markup, no escapes
                        for cell in (
                            change.item_id,
                            _short(change.input, 40),
                            _short(change.expected, 30),
                            _short(change.output_a, 60),
                            _short(change.output_b, 60),
                            _score_moves(change),
                        )
                    )
                )
            parts.append(changes)
        return Group(*parts)

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=140, record=True, color_system=None, file=io.StringIO())
        console.print(self)
        return console.export_text()

    def __repr__(self) -> str:
        deltas = ", ".join(f"{n}={_signed(c.delta)}" for n, c in self.evaluators.items())
        return f"<Comparison {self._title()}: {deltas}>"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._columns())
        rows = []
        for name, c in self.evaluators.items():
            verdict = c.verdict(self.alpha)
            color = {"better": "#1a7f37", "worse": "#cf222e"}.get(verdict, "#666")
            cells = [html.escape(name), *(html.escape(cell) for cell in self._cells(c))]
            for at in (self._columns().index("delta"), self._columns().index("")):
                cells[at] = f'<span style="color:{color}">{cells[at]}</span>'
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        note = "".join(
            f"<p><small>{html.escape(text)}</small></p>"
            for text in (
                self.status_note(),
                self.dataset_note(),
                self.evaluator_note(),
                self.cost_note(),
                self.noise_note(),
            )
            if text
        )
        task = (
            "<table><thead><tr><th></th><th>A</th><th>B</th></tr></thead><tbody>"
            + "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                for row in self.task_rows()
            )
            + "</tbody></table>"
        )
        changed = ""
        if self.changes:
            lines = "".join(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(cell)}</td>"
                    for cell in (
                        ch.item_id,
                        _short(ch.input, 80),
                        _short(ch.expected, 60),
                        _short(ch.output_a, 200),
                        _short(ch.output_b, 200),
                        _score_moves(ch),
                    )
                )
                + "</tr>"
                for ch in self.changes
            )
            changed = (
                "<p><b>Changed items</b></p><table><thead><tr><th>item</th><th>input</th>"
                "<th>expected</th><th>A output</th><th>B output</th><th>scores A → B</th>"
                f"</tr></thead><tbody>{lines}</tbody></table>"
            )
        return (
            f"<p><b>{html.escape(self._title())}</b></p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}{task}{changed}"
        )


def _cost(task: Any) -> str:
    """The task's cost in a table cell, with the unpriced calls it leaves out."""
    return money_of_calls(task.cost_usd, task.unpriced_calls, task.unpriced_failed) or money(None)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _short(value: Any, limit: int) -> str:
    from assay.evaluators.dataset import canonical_json

    text = "" if value is None else value if isinstance(value, str) else canonical_json(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score_moves(change: ItemChange) -> str:
    moves = []
    for name in sorted(set(change.scores_a) | set(change.scores_b)):
        before, after = change.scores_a.get(name), change.scores_b.get(name)
        if before != after:
            moves.append(f"{name} {_num(before, 2)}→{_num(after, 2)}")
    return ", ".join(moves)


def items_in_common(a: ExperimentResult, b: ExperimentResult) -> tuple[int, int, int]:
    """How many dataset items both runs ran, only A ran, and only B ran."""
    ids_a, ids_b = set(a.by_item()), set(b.by_item())
    return len(ids_a & ids_b), len(ids_a - ids_b), len(ids_b - ids_a)


def dataset_difference(
    a: ExperimentResult, b: ExperimentResult, names: tuple[str, str], alone: tuple[str, str]
) -> str:
    """What differs between the datasets two runs ran, in a sentence ("" when they ran the same
    version): `names` say who ran each ("A", "the baseline x"), `alone` whose items only one
    ran ("A", "the baseline")."""
    if (a.dataset_name, a.dataset_version) == (b.dataset_name, b.dataset_version):
        return ""
    both, only_a, only_b = items_in_common(a, b)
    ran_b = (
        f"version {b.dataset_version}"
        if a.dataset_name == b.dataset_name
        else f"dataset {b.dataset_name} version {b.dataset_version}"
    )
    return (
        f"{names[0]} ran dataset {a.dataset_name} version {a.dataset_version}, {names[1]} "
        f"{ran_b}: compared on the {both} items both ran ({only_a} only in {alone[0]}, "
        f"{only_b} only in {alone[1]})"
    )


def changed_evaluators(a: ExperimentResult, b: ExperimentResult) -> dict[str, tuple[str, str]]:
    """Evaluator name → (version in A, version in B), for those both runs have in two versions."""
    return {
        name: (a.evaluators[name], version)
        for name, version in b.evaluators.items()
        if name in a.evaluators and a.evaluators[name] and version and a.evaluators[name] != version
    }


def compare(
    a: ExperimentResult | str,
    b: ExperimentResult | str,
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    url: str | None = None,
    client: CollectorClient | None = None,
) -> Comparison:
    """Compare run B with run A (results, or experiment names / ids loaded from the collector).

    A name means the latest run of that name. Positive deltas mean B scores higher. Runs with
    repetitions are compared on per-item means, with the noise their repetitions measured;
    a run compared with itself gives its noise floor.
    """
    from assay.evaluators.results import ExperimentResult

    if isinstance(a, str) or isinstance(b, str):
        from assay.evaluators.client import CollectorClient

        client = client or CollectorClient(url)
    run_a = ExperimentResult.load(a, client=client) if isinstance(a, str) else a
    run_b = ExperimentResult.load(b, client=client) if isinstance(b, str) else b
    table_a = {name: run_a.values(name) for name in run_a.evaluator_names}
    table_b = {name: run_b.values(name) for name in run_b.evaluator_names}
    directions = {name: run_b.direction(name) for name in run_b.evaluator_names}
    evaluators = {
        name: replace(
            compared,
            noise=run_noise(run_a, run_b, name),
            same_run=run_a.experiment_id == run_b.experiment_id,
        )
        for name, compared in compare_score_tables(
            table_a,
            table_b,
            directions=directions,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        ).items()
    }
    moved = {i for c in evaluators.values() for i in (*c.improved, *c.regressed)}
    changed_ids = list(dict.fromkeys(item.item_id for item in run_b.items if item.item_id in moved))
    items_a, items_b = run_a.by_item(), run_b.by_item()
    changes = [
        ItemChange(
            item_id=item_id,
            input=items_b[item_id].input,
            expected=items_b[item_id].expected,
            output_a=items_a[item_id].output_text,
            output_b=items_b[item_id].output_text,
            scores_a={n: table_a[n][item_id] for n in evaluators if item_id in table_a[n]},
            scores_b={n: table_b[n][item_id] for n in evaluators if item_id in table_b[n]},
        )
        for item_id in changed_ids
    ]
    return Comparison(run_a, run_b, evaluators, changes, alpha)
