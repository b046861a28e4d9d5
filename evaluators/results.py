"""What an experiment run produced: per-item results, summaries, tables and notebook display.

A score counts in an evaluator's mean and pass rate when the task succeeded on the item and
the evaluator could judge it; the others are that evaluator's `failures` (as peers do: a run
where the task crashed on an item has no score for it, rather than a made-up 0), and the
errors of an evaluator that raised are kept with their text.

With repetitions (each item run k times) an item's score is the mean of its repetitions, the
run's mean is the mean over items, and `noise` is the run-to-run standard deviation of the
mean: the spread of the k means a single pass over the dataset gave.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assay.evaluators.base import HIGHER_IS_BETTER, Score
from assay.evaluators.formatting import money_of_calls, plain, short_of_billed, unpriced

if TYPE_CHECKING:
    import pandas
    from rich.console import RenderableType

    from assay.evaluators.client import CollectorClient

__all__ = ["EvaluatorSummary", "ExperimentResult", "ItemResult", "TaskSummary"]

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"


def output_text(output: Any) -> str:
    """What evaluators and the store see of a task's output: text, or JSON for anything else."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return json.dumps(output, ensure_ascii=False, default=str)


@dataclass
class ItemResult:
    """One dataset item run through the task and scored."""

    item_id: str
    input: Any
    expected: Any = None
    output: Any = None
    status: str = STATUS_OK  # ok | error | timeout
    error: str = ""
    scores: dict[str, Score] = field(default_factory=dict)
    started_at: float = 0.0  # epoch seconds
    duration_ms: float = 0.0
    trace_id: str = ""
    span_id: str = ""
    cost_usd: float | None = None  # of its priced LLM calls: a lower bound when some are not
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str = ""
    repetition: int = 0  # 0 .. repetitions-1: which run of the item this is
    # Its LLM calls without a cost (pricing.UNPRICED_CALLS), and those of them that failed; None
    # for an item stored before Assay counted them (migration 020) or by an older client.
    unpriced_calls: int | None = 0
    unpriced_failed: int | None = 0

    @property
    def failed(self) -> bool:
        return self.status != STATUS_OK

    @property
    def output_text(self) -> str:
        return output_text(self.output)

    def to_payload(self) -> dict[str, Any]:
        """The shape `POST /api/experiments/{id}/items` takes."""
        return {
            "item_id": self.item_id,
            "repetition": self.repetition,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "output": self.output_text,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model": self.model,
            "unpriced_calls": self.unpriced_calls,
            "unpriced_failed": self.unpriced_failed,
            "scores": [
                {
                    key: value
                    for key, value in asdict(score).items()
                    if key not in ("input_tokens", "output_tokens")
                }
                for score in self.scores.values()
            ],
        }


def _percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, interpolated linearly between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _total(values: list[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


def _counted(values: list[int | None]) -> int | None:
    """A count over items, None when an item's is not known (the sum would claim too few)."""
    known = [v for v in values if v is not None]
    return sum(known) if len(known) == len(values) else None


@dataclass(frozen=True)
class EvaluatorSummary:
    """One evaluator over a run. Also readable as a mapping: `summary["exact_match"]["mean"]`."""

    mean: float | None  # over items (an item's value: the mean of its repetitions)
    pass_rate: float | None  # share of judged items that passed; None without a threshold
    count: int  # scores judged (items × repetitions)
    failures: int  # scores missing: the task failed, or the evaluator raised
    cost_usd: float | None = None  # the evaluator's own (a judge's) cost, tokens and latency
    tokens: int | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    # What the evaluator raised, "ExcType: message" → how often (the most frequent first).
    errors: dict[str, int] = field(default_factory=dict)
    direction: str = HIGHER_IS_BETTER
    # With repetitions: the standard deviation of the mean between repetitions, and how many
    # items did not score the same in every repetition. None with a single repetition.
    noise: float | None = None
    unstable_items: int | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskSummary:
    """The task over a run: items, failures, its LLM cost and tokens, its latency."""

    items: int
    failed: int
    timeouts: int
    cost_usd: float | None  # of the priced LLM calls
    input_tokens: int | None
    output_tokens: int | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    # The LLM calls without a cost (pricing.UNPRICED_CALLS) and those of them that failed: with
    # an unpriced call that succeeded, cost_usd is a lower bound. None: not counted.
    unpriced_calls: int | None = 0
    unpriced_failed: int | None = 0

    @property
    def cost_note(self) -> str:
        """What the cost leaves out ("" when nothing): formatting.unpriced."""
        if self.unpriced_calls is None and self.cost_usd is None:
            return ""  # no cost shown, nothing counted: nothing to qualify
        return unpriced(self.unpriced_calls, self.unpriced_failed)

    @property
    def lower_bound(self) -> bool:
        """The cost may be short of what was billed: an unpriced call succeeded, or the
        unpriced calls were not counted."""
        if self.unpriced_calls is None or self.unpriced_failed is None:
            return self.cost_usd is not None
        return short_of_billed(self.unpriced_calls, self.unpriced_failed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExperimentResult:
    """A run: what ran (name, dataset version, params, evaluators) and what each item gave."""

    experiment_id: str
    name: str
    dataset_name: str
    dataset_version: str
    items: list[ItemResult]
    evaluators: dict[str, str]  # name → version
    params: dict[str, Any] = field(default_factory=dict)
    git_commit: str = ""
    started_at: float = 0.0
    ended_at: float | None = None
    status: str = "completed"
    url: str = ""  # the collector it was recorded in ("" when not recorded)
    repetitions: int = 1  # how many times each item ran
    verdict: str = ""  # "passed" | "failed" once a gate (`assay eval run`) judged the run
    gate: dict[str, Any] = field(default_factory=dict)  # what the gate checked, and why

    @property
    def evaluator_names(self) -> list[str]:
        return list(self.evaluators)

    @property
    def failed_items(self) -> list[ItemResult]:
        return [item for item in self.items if item.failed]

    def by_item(self) -> dict[str, ItemResult]:
        """Item id → its result (the first repetition's, when there are several)."""
        found: dict[str, ItemResult] = {}
        for item in sorted(self.items, key=lambda i: i.repetition):
            found.setdefault(item.item_id, item)
        return found

    def _judged(self, name: str) -> list[tuple[ItemResult, Score]]:
        return [
            (item, item.scores[name])
            for item in self.items
            if not item.failed and name in item.scores and not item.scores[name].error
        ]

    def values(self, name: str) -> dict[str, float]:
        """The usable scores of one evaluator: item id → value (the mean of its repetitions)."""
        per_item: dict[str, list[float]] = defaultdict(list)
        for item, score in self._judged(name):
            per_item[item.item_id].append(score.value)
        return {item_id: statistics.fmean(values) for item_id, values in per_item.items()}

    def pass_values(self, name: str) -> dict[str, float]:
        """Item id → the share of its repetitions that passed (items with a verdict only)."""
        per_item: dict[str, list[bool]] = defaultdict(list)
        for item, score in self._judged(name):
            if score.passed is not None:
                per_item[item.item_id].append(score.passed)
        return {item_id: sum(passes) / len(passes) for item_id, passes in per_item.items()}

    def noise(self, name: str, metric: str = "mean") -> float | None:
        """The standard deviation, between repetitions, of the run's mean (or pass rate) of
        one evaluator: how much one pass over the dataset moves by chance. None below two."""
        per_repetition: dict[int, list[float]] = defaultdict(list)
        for item, score in self._judged(name):
            if metric == "mean":
                per_repetition[item.repetition].append(score.value)
            elif score.passed is not None:
                per_repetition[item.repetition].append(float(score.passed))
        means = [statistics.fmean(values) for values in per_repetition.values() if values]
        return statistics.stdev(means) if len(means) >= 2 else None

    def direction(self, name: str) -> str:
        """The direction of an evaluator's scores (as they were stored)."""
        for _, score in self._judged(name):
            return score.direction
        return HIGHER_IS_BETTER

    @property
    def summary(self) -> dict[str, EvaluatorSummary]:
        summaries = {}
        units = len(self.items)
        for name in self.evaluators:
            scores = [
                item.scores[name] for item in self.items if not item.failed and name in item.scores
            ]
            judged = [s for s in scores if not s.error]
            errors = Counter(s.error for s in scores if s.error)
            latencies = [s.duration_ms for s in scores if s.duration_ms is not None]
            tokens = [
                (s.input_tokens or 0) + (s.output_tokens or 0)
                for s in scores
                if s.input_tokens is not None or s.output_tokens is not None
            ]
            means, passes = self.values(name), self.pass_values(name)
            summaries[name] = EvaluatorSummary(
                mean=statistics.fmean(means.values()) if means else None,
                pass_rate=statistics.fmean(passes.values()) if passes else None,
                count=len(judged),
                failures=units - len(judged),
                cost_usd=_total([s.cost_usd for s in scores]),
                tokens=sum(tokens) if tokens else None,
                latency_p50_ms=_percentile(latencies, 50),
                latency_p95_ms=_percentile(latencies, 95),
                errors=dict(errors.most_common()),
                direction=self.direction(name),
                noise=self.noise(name) if self.repetitions > 1 else None,
                unstable_items=self._unstable(name) if self.repetitions > 1 else None,
            )
        return summaries

    def _unstable(self, name: str) -> int:
        per_item: dict[str, set[float]] = defaultdict(set)
        for item, score in self._judged(name):
            per_item[item.item_id].add(round(score.value, 9))
        return sum(len(values) > 1 for values in per_item.values())

    @property
    def task_summary(self) -> TaskSummary:
        done = [item.duration_ms for item in self.items if not item.failed]
        input_tokens = _total([item.input_tokens for item in self.items])
        output_tokens = _total([item.output_tokens for item in self.items])
        return TaskSummary(
            items=len(self.items),
            failed=len(self.failed_items),
            timeouts=sum(item.status == STATUS_TIMEOUT for item in self.items),
            cost_usd=_total([item.cost_usd for item in self.items]),
            input_tokens=int(input_tokens) if input_tokens is not None else None,
            output_tokens=int(output_tokens) if output_tokens is not None else None,
            latency_p50_ms=_percentile(done, 50),
            latency_p95_ms=_percentile(done, 95),
            unpriced_calls=_counted([item.unpriced_calls for item in self.items]),
            unpriced_failed=_counted([item.unpriced_failed for item in self.items]),
        )

    def summary_dict(self) -> dict[str, Any]:
        """The `summary` stored with the experiment: per evaluator, and the task's."""
        return {
            "evaluators": {name: s.to_dict() for name, s in self.summary.items()},
            "task": self.task_summary.to_dict(),
        }

    @property
    def errors(self) -> dict[str, dict[str, int]]:
        """Per evaluator that raised on some items: its error texts and how often."""
        return {name: s.errors for name, s in self.summary.items() if s.errors}

    def record(self) -> dict[str, Any]:
        """The shape `POST /api/experiments` takes."""
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "dataset_name": self.dataset_name,
            "dataset_version": self.dataset_version,
            "params": self.params,
            "evaluators": self.evaluators,
            "git_commit": self.git_commit,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "item_count": len(self.items),
            "repetitions": self.repetitions,
            "verdict": self.verdict,
            "gate": self.gate,
            "summary": self.summary_dict() if self.ended_at is not None else {},
        }

    # --- loading a stored run -------------------------------------------------------------------
    @classmethod
    def load(
        cls, ref: str, *, url: str | None = None, client: CollectorClient | None = None
    ) -> ExperimentResult:
        """A stored run by experiment id, or the latest run of that name."""
        from assay.evaluators.client import CollectorClient

        client = client or CollectorClient(url)
        result = cls.from_payload(client.get_experiment(ref))
        result.url = client.url
        return result

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ExperimentResult:
        """From `GET /api/experiments/{ref}`: the experiment row and its items with scores."""
        row = payload["experiment"]
        items = []
        for item in payload.get("items") or []:
            scores = {
                score["name"]: Score(
                    name=score["name"],
                    value=score["value"],
                    label=score.get("label") or "",
                    passed=score.get("passed"),
                    explanation=score.get("explanation") or "",
                    evaluator_version=score.get("evaluator_version") or "",
                    cost_usd=score.get("cost_usd"),
                    duration_ms=score.get("duration_ms"),
                    error=score.get("error") or "",
                    direction=score.get("direction") or HIGHER_IS_BETTER,
                )
                for score in item.get("scores") or []
            }
            items.append(
                ItemResult(
                    item_id=item["item_id"],
                    input=item.get("input"),
                    expected=item.get("expected"),
                    output=item.get("output"),
                    status=item.get("status") or STATUS_OK,
                    error=item.get("error") or "",
                    scores=scores,
                    started_at=_epoch(item.get("started_at")),
                    duration_ms=float(item.get("duration_ms") or 0.0),
                    trace_id=item.get("trace_id") or "",
                    span_id=item.get("span_id") or "",
                    cost_usd=item.get("cost_usd"),
                    input_tokens=item.get("input_tokens"),
                    output_tokens=item.get("output_tokens"),
                    model=item.get("model") or "",
                    repetition=int(item.get("repetition") or 0),
                    unpriced_calls=item.get("unpriced_calls"),
                    unpriced_failed=item.get("unpriced_failed"),
                )
            )
        return cls(
            experiment_id=row["experiment_id"],
            name=row["name"],
            dataset_name=row.get("dataset_name") or "",
            dataset_version=row.get("dataset_version") or "",
            items=items,
            evaluators=dict(row.get("evaluators") or {}),
            params=dict(row.get("params") or {}),
            git_commit=row.get("git_commit") or "",
            started_at=_epoch(row.get("started_at")),
            ended_at=_epoch(row["ended_at"]) if row.get("ended_at") else None,
            status=row.get("status") or "",
            repetitions=int(row.get("repetitions") or 1),
            verdict=row.get("verdict") or "",
            gate=dict(row.get("gate") or {}),
        )

    # --- showing it -----------------------------------------------------------------------------
    def to_pandas(self) -> pandas.DataFrame:
        """One row per item (per item and repetition, with repetitions): input, expected,
        output, status, cost, tokens, latency, scores."""
        import pandas as pd

        rows = []
        for item in self.items:
            row: dict[str, Any] = {
                "item_id": item.item_id,
                "repetition": item.repetition,
                "input": item.input,
                "expected": item.expected,
                "output": item.output_text,
                "status": item.status,
                "error": item.error,
                "duration_ms": item.duration_ms,
                "cost_usd": item.cost_usd,
                "unpriced_calls": item.unpriced_calls,
                "unpriced_failed": item.unpriced_failed,
                "input_tokens": item.input_tokens,
                "output_tokens": item.output_tokens,
            }
            for name in self.evaluators:
                score = item.scores.get(name)
                usable = score is not None and not score.error and not item.failed
                row[name] = score.value if usable and score is not None else None
                row[f"{name}.passed"] = score.passed if score is not None else None
            rows.append(row)
        if not rows:
            return pd.DataFrame()
        frame = pd.DataFrame(rows)
        if self.repetitions > 1:
            return frame.set_index(["item_id", "repetition"])
        return frame.drop(columns="repetition").set_index("item_id")

    def _headline(self) -> str:
        task = self.task_summary
        duration = (
            f" in {self.ended_at - self.started_at:.1f}s" if self.ended_at is not None else ""
        )
        cost = money_of_calls(task.cost_usd, task.unpriced_calls, task.unpriced_failed)
        cost = f" · {cost}" if cost else ""
        tokens = (
            f" · {(task.input_tokens or 0) + (task.output_tokens or 0)} tokens"
            if task.input_tokens is not None or task.output_tokens is not None
            else ""
        )
        items = f"{task.items} items"
        if self.repetitions > 1:
            items = f"{len(self.by_item())} items × {self.repetitions} repetitions"
        verdict = f" · gate {self.verdict.upper()}" if self.verdict in ("passed", "failed") else ""
        return (
            f"{self.name} · {self.dataset_name}@{self.dataset_version} · {items}, "
            f"{task.failed} failed{duration}{cost}{tokens}{verdict}"
        )

    def _columns(self) -> list[str]:
        columns = ["evaluator", "mean", "pass rate", "count", "failures", "p50 ms", "p95 ms"]
        if self.repetitions > 1:
            columns[2:2] = ["noise ±", "unstable"]
        return columns

    def _summary_cells(self, s: EvaluatorSummary) -> list[str]:
        cells = [
            _fmt(s.mean),
            _fmt(s.pass_rate),
            str(s.count),
            str(s.failures),
            _fmt(s.latency_p50_ms, 2),
            _fmt(s.latency_p95_ms, 2),
        ]
        if self.repetitions > 1:
            cells[1:1] = [_fmt(s.noise), "–" if s.unstable_items is None else str(s.unstable_items)]
        return cells

    def _error_lines(self) -> list[str]:
        """One line per distinct error of each evaluator that raised: what and how often."""
        lines = []
        for name, errors in self.errors.items():
            for text, count in list(errors.items())[:3]:
                lines.append(f"{name} failed on {count} item(s): {text}")
            if len(errors) > 3:
                lines.append(f"{name}: {len(errors) - 3} other error(s)")
        return lines

    def __repr__(self) -> str:
        means = ", ".join(
            f"{name}={s.mean:.3f}" if s.mean is not None else f"{name}=–"
            for name, s in self.summary.items()
        )
        return f"<ExperimentResult {self.name!r} {len(self.items)} items {means}>"

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table

        task = self.task_summary
        table = Table(header_style="bold")
        for column in self._columns():
            table.add_column(column, justify="left" if column == "evaluator" else "right")
        for name, s in self.summary.items():
            table.add_row(plain(name), *self._summary_cells(s))
        blank = [""] * (len(self._columns()) - 5)
        table.add_row(
            "(task)",
            *blank,
            str(task.items - task.failed),
            str(task.failed),
            _fmt(task.latency_p50_ms, 2),
            _fmt(task.latency_p95_ms, 2),
            style="dim",
        )
        parts: list[RenderableType] = [plain(self._headline(), style="bold"), table]
        parts += [plain(line, style="red") for line in self._error_lines()]
        return Group(*parts)

    def _repr_html_(self) -> str:
        summary_rows = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in (name, *self._summary_cells(s)))
            + "</tr>"
            for name, s in self.summary.items()
        )
        errors = "".join(
            f'<p style="color:#cf222e">{html.escape(line)}</p>' for line in self._error_lines()
        )
        names = list(self.evaluators)
        item_rows = []
        for item in self.items[:20]:
            cells = [
                item.item_id,
                _short(item.input),
                _short(item.expected),
                _short(item.output_text) if not item.failed else f"⚠ {item.error}",
            ]
            cells += [score_cell(item, n) for n in names]
            item_rows.append(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            )
        more = f"<p>… {len(self.items) - 20} more items</p>" if len(self.items) > 20 else ""
        score_heads = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        return (
            f"<p><b>{html.escape(self._headline())}</b><br><small>experiment "
            f"<code>{html.escape(self.experiment_id)}</code></small></p>"
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(column)}</th>" for column in self._columns())
            + f"</tr></thead><tbody>{summary_rows}</tbody></table>{errors}"
            "<details><summary>items</summary><table><thead><tr><th>item</th><th>input</th>"
            f"<th>expected</th><th>output</th>{score_heads}</tr></thead>"
            f"<tbody>{''.join(item_rows)}</tbody></table>{more}</details>"
        )


def score_cell(item: ItemResult, name: str, digits: int = 3) -> str:
    """One evaluator's score of an item as shown in a table: the value, ⚠ with the error when
    the evaluator raised, – when there is none (the task failed)."""
    score = item.scores.get(name)
    if score is None or item.failed:
        return "–"
    if score.error:
        return f"⚠ {score.error}"
    return _fmt(score.value, digits)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _short(value: Any, limit: int = 120) -> str:
    text = output_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _epoch(value: Any) -> float:
    """Epoch seconds from the API's ISO times (UTC when no offset) or numbers."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()
