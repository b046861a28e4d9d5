"""Two experiment runs side by side: per-evaluator means with confidence intervals and noise,
the task's cost, tokens and latency, and the items whose scores moved, regressions first. The
statistics are the experiments library's own `compare`, on the runs read from the store; this
module only reads them and lays them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.records.experiments import read_experiment
from assay.collector.store.base import Store
from assay.collector.ui.pages import NotFound, page, ui_endpoint, with_store
from assay.collector.ui.render import pretty_json
from assay.evaluators.comparison import Comparison, compare
from assay.evaluators.results import ExperimentResult

TIE = 1e-9


@dataclass
class Move:
    """One evaluator's score of an item in A and in B (per-item means over repetitions), and
    what B could not score: its evaluator's error, or the task's failure."""

    name: str
    a: float | None
    b: float | None
    kind: str  # better | worse | same, read in the evaluator's direction; "" when not both
    error_b: str = ""


@dataclass
class ItemRow:
    item_id: str
    input: str
    expected: str
    output_a: str
    output_b: str
    change: float  # the sum over evaluators of the (oriented) B − A: below zero is a regression
    moves: list[Move] = field(default_factory=list)
    failure_b: str = ""  # B's task failed on the item (its error), or an evaluator could not score
    missing: str = ""  # "A" or "B": the run that does not have the item (another dataset version)
    expected_a: str = ""  # A's expected output, when the dataset was edited between the runs

    @property
    def kind(self) -> str:
        if self.failure_b:
            return "failed"
        if self.missing:
            return f"only in {'B' if self.missing == 'A' else 'A'}"
        if self.change < -TIE:
            return "worse"
        return "better" if self.change > TIE else "same"


def _shown(value: Any) -> str:
    return "" if value is None else pretty_json(value) if not isinstance(value, str) else value


def load_run(store: Store, ref: str) -> ExperimentResult:
    """A stored run as the library's `ExperimentResult` (NotFound when there is none)."""
    payload = read_experiment(store, ref)
    if payload is None:
        raise NotFound(f"no experiment run {ref!r}")
    return ExperimentResult.from_payload(payload)


def _errors(run: ExperimentResult, item_id: str, name: str) -> str:
    """What kept `name` from scoring the item in every repetition of `run` ("" when one did)."""
    texts = []
    for item in run.items:
        if item.item_id != item_id:
            continue
        if item.failed:
            texts.append(item.error or item.status)
        elif name in item.scores and item.scores[name].error:
            texts.append(item.scores[name].error)
        else:
            return ""
    return texts[0] if texts else ""


def item_rows(comparison: Comparison) -> list[ItemRow]:
    """Every item of A and B side by side (per-item means over repetitions): the items B failed
    on first, then the worst regressions; items only one run has (another dataset version) are
    listed as such, never dropped."""
    a, b = comparison.a, comparison.b
    names = sorted(comparison.evaluators)
    table_a = {n: a.values(n) for n in names}
    table_b = {n: b.values(n) for n in names}
    firsts_a, firsts_b = a.by_item(), b.by_item()
    rows = []
    for item_id in [*firsts_b, *(i for i in firsts_a if i not in firsts_b)]:
        item_a, item_b = firsts_a.get(item_id), firsts_b.get(item_id)
        shown = item_b or item_a
        assert shown is not None
        change = 0.0
        moves = []
        for n in names:
            va, vb = table_a[n].get(item_id), table_b[n].get(item_id)
            kind = ""
            if va is not None and vb is not None:
                sign = 1 if comparison.evaluators[n].direction == "higher_is_better" else -1
                change += sign * (vb - va)
                kind = (
                    "worse"
                    if sign * (vb - va) < -TIE
                    else "better"
                    if sign * (vb - va) > TIE
                    else "same"
                )
            error_b = _errors(b, item_id, n) if item_b is not None and vb is None else ""
            moves.append(Move(n, va, vb, kind, error_b))
        task_failure = item_b.error or item_b.status if item_b is not None and item_b.failed else ""
        unscored = next((m.error_b for m in moves if m.error_b), "")
        rows.append(
            ItemRow(
                item_id,
                _shown(shown.input),
                _shown(shown.expected),
                item_a.output_text if item_a else "",
                item_b.output_text if item_b else "",
                change,
                moves,
                failure_b=task_failure or unscored,
                missing="A" if item_a is None else "B" if item_b is None else "",
                expected_a=(
                    _shown(item_a.expected)
                    if item_a is not None
                    and item_b is not None
                    and item_a.expected != item_b.expected
                    else ""
                ),
            )
        )
    order = {"failed": 0, "worse": 1}
    rows.sort(key=lambda r: (order.get(r.kind, 2), r.change, r.item_id))
    return rows


def compare_runs(store: Store, ref_a: str, ref_b: str) -> tuple[Comparison, list[ItemRow]]:
    comparison = compare(load_run(store, ref_a), load_run(store, ref_b))
    return comparison, item_rows(comparison)


@ui_endpoint
async def compare_page(request: Request) -> Response:
    ref_a, ref_b = request.query_params.get("a", ""), request.query_params.get("b", "")
    if not ref_a or not ref_b:
        raise ValueError("choose two runs to compare: ?a=<run>&b=<run>")
    comparison, items = await with_store(request, compare_runs, ref_a, ref_b)
    return page(request, "compare.html", cmp=comparison, items=items)
