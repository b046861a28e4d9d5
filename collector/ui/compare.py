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
class ItemRow:
    item_id: str
    input: str
    expected: str
    output_a: str
    output_b: str
    change: float  # the sum over evaluators of the (oriented) B − A: below zero is a regression
    moves: list[tuple[str, float | None, float | None]] = field(default_factory=list)

    @property
    def kind(self) -> str:
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


def item_rows(comparison: Comparison) -> list[ItemRow]:
    """Every item of B beside A (per-item means over repetitions), the worst regression first."""
    a, b = comparison.a, comparison.b
    names = sorted(comparison.evaluators)
    table_a = {n: a.values(n) for n in names}
    table_b = {n: b.values(n) for n in names}
    firsts_a, rows = a.by_item(), []
    for item_id, item_b in b.by_item().items():
        item_a = firsts_a.get(item_id)
        change = 0.0
        moves = []
        for n in names:
            va, vb = table_a[n].get(item_id), table_b[n].get(item_id)
            moves.append((n, va, vb))
            if va is not None and vb is not None:
                sign = 1 if comparison.evaluators[n].direction == "higher_is_better" else -1
                change += sign * (vb - va)
        rows.append(
            ItemRow(
                item_id,
                _shown(item_b.input),
                _shown(item_b.expected),
                item_a.output_text if item_a else "",
                item_b.output_text,
                change,
                moves,
            )
        )
    rows.sort(key=lambda r: (r.change, r.item_id))
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
