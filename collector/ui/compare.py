"""Two experiment runs side by side: per-evaluator means with confidence intervals, and the
items whose scores moved, regressions first. The statistics are the experiments library's
(`compare_score_tables`); this module only reads the runs and lays them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.experiments import read_experiment
from assay.collector.store.base import Store
from assay.collector.ui.pages import NotFound, page, ui_endpoint, with_store
from assay.collector.ui.render import pretty_json
from assay.evaluators.comparison import ItemChange, PairedComparison, compare_score_tables

TIE = 1e-9


@dataclass
class ItemRow:
    item: ItemChange  # input and expected shown as text
    change: float  # the sum over evaluators of (B − A): below zero is a regression
    moves: list[tuple[str, float | None, float | None]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.change < -TIE:
            return "worse"
        return "better" if self.change > TIE else "same"


@dataclass
class RunComparison:
    a: dict[str, Any]
    b: dict[str, Any]
    evaluators: dict[str, PairedComparison]
    items: list[ItemRow]


def _table(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Evaluator → item id → score, the shape the statistics take."""
    table: dict[str, dict[str, float]] = {}
    for item in run["items"]:
        for score in item.get("scores", []):
            if not score.get("error"):
                table.setdefault(score["name"], {})[item["item_id"]] = float(score["value"])
    return table


def _shown(value: Any) -> str:
    return "" if value is None else pretty_json(value) if not isinstance(value, str) else value


def compare_runs(store: Store, ref_a: str, ref_b: str) -> RunComparison:
    run_a, run_b = read_experiment(store, ref_a), read_experiment(store, ref_b)
    for ref, run in ((ref_a, run_a), (ref_b, run_b)):
        if run is None:
            raise NotFound(f"no experiment run {ref!r}")
    assert run_a is not None and run_b is not None
    table_a, table_b = _table(run_a), _table(run_b)
    evaluators = compare_score_tables(table_a, table_b)
    items_a = {i["item_id"]: i for i in run_a["items"]}
    rows = []
    for item_b in run_b["items"]:
        item_id = item_b["item_id"]
        item_a = items_a.get(item_id, {})
        scores_a = {n: t[item_id] for n, t in table_a.items() if item_id in t}
        scores_b = {n: t[item_id] for n, t in table_b.items() if item_id in t}
        names = sorted(set(scores_a) | set(scores_b))
        change = sum(scores_b[n] - scores_a[n] for n in names if n in scores_a and n in scores_b)
        rows.append(
            ItemRow(
                ItemChange(
                    item_id,
                    _shown(item_b.get("input")),
                    _shown(item_b.get("expected")),
                    str(item_a.get("output", "")),
                    str(item_b.get("output", "")),
                    scores_a,
                    scores_b,
                ),
                change,
                [(n, scores_a.get(n), scores_b.get(n)) for n in names],
            )
        )
    rows.sort(key=lambda r: (r.change, r.item.item_id))  # the worst regression first
    return RunComparison(run_a["experiment"], run_b["experiment"], evaluators, rows)


@ui_endpoint
async def compare_page(request: Request) -> Response:
    ref_a, ref_b = request.query_params.get("a", ""), request.query_params.get("b", "")
    if not ref_a or not ref_b:
        raise ValueError("choose two runs to compare: ?a=<run>&b=<run>")
    result = await with_store(request, compare_runs, ref_a, ref_b)
    return page(request, "compare.html", cmp=result)
