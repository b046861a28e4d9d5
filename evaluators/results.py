"""What an experiment run produced: per-item results, summaries, tables and notebook display.

A score counts in an evaluator's mean and pass rate when the task succeeded on the item and
the evaluator could judge it; the others are that evaluator's `failures` (as peers do: a run
where the task crashed on an item has no score for it, rather than a made-up 0).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assay.evaluators.base import Score

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
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str = ""

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


@dataclass(frozen=True)
class EvaluatorSummary:
    """One evaluator over a run. Also readable as a mapping: `summary["exact_match"]["mean"]`."""

    mean: float | None
    pass_rate: float | None  # share of judged items that passed; None without a threshold
    count: int  # items judged
    failures: int  # items not judged: the task failed, or the evaluator raised
    cost_usd: float | None = None  # the evaluator's own (a judge's) cost, tokens and latency
    tokens: int | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

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
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None

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

    @property
    def evaluator_names(self) -> list[str]:
        return list(self.evaluators)

    @property
    def failed_items(self) -> list[ItemResult]:
        return [item for item in self.items if item.failed]

    def by_item(self) -> dict[str, ItemResult]:
        return {item.item_id: item for item in self.items}

    def values(self, name: str) -> dict[str, float]:
        """The usable scores of one evaluator: item id → value."""
        return {
            item.item_id: item.scores[name].value
            for item in self.items
            if not item.failed and name in item.scores and not item.scores[name].error
        }

    @property
    def summary(self) -> dict[str, EvaluatorSummary]:
        summaries = {}
        for name in self.evaluators:
            scores = [
                item.scores[name] for item in self.items if not item.failed and name in item.scores
            ]
            judged = [s for s in scores if not s.error]
            verdicts = [s.passed for s in judged if s.passed is not None]
            latencies = [s.duration_ms for s in scores if s.duration_ms is not None]
            tokens = [
                (s.input_tokens or 0) + (s.output_tokens or 0)
                for s in scores
                if s.input_tokens is not None or s.output_tokens is not None
            ]
            summaries[name] = EvaluatorSummary(
                mean=statistics.fmean(s.value for s in judged) if judged else None,
                pass_rate=sum(verdicts) / len(verdicts) if verdicts else None,
                count=len(judged),
                failures=len(self.items) - len(judged),
                cost_usd=_total([s.cost_usd for s in scores]),
                tokens=sum(tokens) if tokens else None,
                latency_p50_ms=_percentile(latencies, 50),
                latency_p95_ms=_percentile(latencies, 95),
            )
        return summaries

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
        )

    def summary_dict(self) -> dict[str, Any]:
        """The `summary` stored with the experiment: per evaluator, and the task's."""
        return {
            "evaluators": {name: s.to_dict() for name, s in self.summary.items()},
            "task": self.task_summary.to_dict(),
        }

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
        )

    # --- showing it -----------------------------------------------------------------------------
    def to_pandas(self) -> pandas.DataFrame:
        """One row per item: input, expected, output, status, cost, tokens, latency, scores."""
        import pandas as pd

        rows = []
        for item in self.items:
            row: dict[str, Any] = {
                "item_id": item.item_id,
                "input": item.input,
                "expected": item.expected,
                "output": item.output_text,
                "status": item.status,
                "error": item.error,
                "duration_ms": item.duration_ms,
                "cost_usd": item.cost_usd,
                "input_tokens": item.input_tokens,
                "output_tokens": item.output_tokens,
            }
            for name in self.evaluators:
                score = item.scores.get(name)
                usable = score is not None and not score.error and not item.failed
                row[name] = score.value if usable and score is not None else None
                row[f"{name}.passed"] = score.passed if score is not None else None
            rows.append(row)
        return pd.DataFrame(rows).set_index("item_id") if rows else pd.DataFrame()

    def _headline(self) -> str:
        task = self.task_summary
        duration = (
            f" in {self.ended_at - self.started_at:.1f}s" if self.ended_at is not None else ""
        )
        cost = f" · ${task.cost_usd:.4f}" if task.cost_usd is not None else ""
        tokens = (
            f" · {(task.input_tokens or 0) + (task.output_tokens or 0)} tokens"
            if task.input_tokens is not None or task.output_tokens is not None
            else ""
        )
        return (
            f"{self.name} · {self.dataset_name}@{self.dataset_version} · {task.items} items, "
            f"{task.failed} failed{duration}{cost}{tokens}"
        )

    def __repr__(self) -> str:
        means = ", ".join(
            f"{name}={s.mean:.3f}" if s.mean is not None else f"{name}=–"
            for name, s in self.summary.items()
        )
        return f"<ExperimentResult {self.name!r} {len(self.items)} items {means}>"

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        task = self.task_summary
        table = Table(header_style="bold")
        for column in ("evaluator", "mean", "pass rate", "count", "failures", "p50 ms", "p95 ms"):
            table.add_column(column, justify="left" if column == "evaluator" else "right")
        for name, s in self.summary.items():
            table.add_row(
                name,
                _fmt(s.mean),
                _fmt(s.pass_rate),
                str(s.count),
                str(s.failures),
                _fmt(s.latency_p50_ms, 2),
                _fmt(s.latency_p95_ms, 2),
            )
        table.add_row(
            "(task)",
            "",
            "",
            str(task.items - task.failed),
            str(task.failed),
            _fmt(task.latency_p50_ms, 2),
            _fmt(task.latency_p95_ms, 2),
            style="dim",
        )
        return Group(Text(self._headline(), style="bold"), table)

    def _repr_html_(self) -> str:
        summary_rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{_fmt(s.mean)}</td><td>{_fmt(s.pass_rate)}"
            f"</td><td>{s.count}</td><td>{s.failures}</td><td>{_fmt(s.latency_p50_ms, 1)}</td>"
            f"<td>{_fmt(s.latency_p95_ms, 1)}</td></tr>"
            for name, s in self.summary.items()
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
            cells += [
                _fmt(item.scores[n].value) if n in item.scores and not item.failed else "–"
                for n in names
            ]
            item_rows.append(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            )
        more = f"<p>… {len(self.items) - 20} more items</p>" if len(self.items) > 20 else ""
        score_heads = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        return (
            f"<p><b>{html.escape(self._headline())}</b><br><small>experiment "
            f"<code>{html.escape(self.experiment_id)}</code></small></p>"
            "<table><thead><tr><th>evaluator</th><th>mean</th><th>pass rate</th><th>count</th>"
            "<th>failures</th><th>p50 ms</th><th>p95 ms</th></tr></thead>"
            f"<tbody>{summary_rows}</tbody></table>"
            "<details><summary>items</summary><table><thead><tr><th>item</th><th>input</th>"
            f"<th>expected</th><th>output</th>{score_heads}</tr></thead>"
            f"<tbody>{''.join(item_rows)}</tbody></table>{more}</details>"
        )


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
