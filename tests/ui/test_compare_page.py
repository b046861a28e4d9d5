"""The runs list and the comparison page, in the browser, on two runs that differ the ways real
ones do: the dataset edited between them (an expected output changed, an item removed, one
added), B's task failing on an item, an evaluator that could not score one, and a
lower-is-better evaluator."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from assay.evaluators import Dataset, ExperimentResult, ItemResult, Score
from assay.evaluators.base import LOWER_IS_BETTER
from assay.evaluators.client import CollectorClient
from tests.conftest import RunningCollector

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _item(item_id: str, output: str, exact: float, slip: float | None, **extra: Any) -> ItemResult:
    scores = {"exact": Score(name="exact", value=exact, passed=exact >= 0.5)}
    if slip is not None:
        scores["slip"] = Score(
            name="slip", value=slip, passed=slip <= 0.5, direction=LOWER_IS_BETTER
        )
    return ItemResult(item_id=item_id, input=item_id, output=output, scores=scores, **extra)


def _record(client: CollectorClient, dataset: Dataset, name: str, items: list[ItemResult]) -> str:
    dataset.push(client=client)
    run = ExperimentResult(
        uuid.uuid4().hex, name, dataset.name, dataset.version, items, {"exact": "1", "slip": "1"}
    )
    run.started_at = run.ended_at = time.time()
    for item in items:
        item.started_at = run.started_at
    client.record_experiment(run.record())
    client.add_experiment_items(run.experiment_id, [item.to_payload() for item in items])
    return run.experiment_id


@pytest.fixture(scope="module")
def runs(collector: RunningCollector) -> dict[str, str]:
    """Run A on the first version of the dataset, run B on the edited one; their ids."""
    client = CollectorClient(collector.http_url)
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    first = [{"id": f"q{i}", "input": f"q{i}", "expected": f"a{i}"} for i in range(4)]
    edited = [dict(first[0], expected="A0!"), first[1], first[2]]
    edited.append({"id": "q4", "input": "q4", "expected": "a4"})
    a = _record(
        client,
        Dataset(name, first),
        f"{name}-a",
        [
            _item("q0", "a0", 1.0, 0.0),
            _item("q1", "a1", 1.0, 0.0),
            _item("q2", "wrong", 0.0, 1.0),
            _item("q3", "a3", 1.0, 0.0),
        ],
    )
    q0 = _item("q0", "a0", 0.0, None)
    q0.scores["slip"] = Score.failure(
        "ValueError: cannot judge", name="slip", direction=LOWER_IS_BETTER
    )
    b = _record(
        client,
        Dataset(name, edited),
        f"{name}-b",
        [
            q0,
            ItemResult(item_id="q1", input="q1", status="error", error="RuntimeError: boom"),
            _item("q2", "a2", 1.0, 0.0),
            _item("q4", "a4", 1.0, 0.0),
        ],
    )
    return {"a": a, "b": b, "name": name}


def test_the_runs_list_shows_failures_errors_and_directions(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    page.goto(f"{collector.http_url}/experiments")
    row = page.locator("table.runs tbody tr").filter(has_text=f"{runs['name']}-b")
    expect(row.locator("td.num")).to_contain_text("1 failed")  # q1's task
    expect(row.locator(".badge").filter(has_text="exact")).to_have_text("exact 0.67")
    slip = row.locator(".badge").filter(has_text="slip")
    expect(slip).to_contain_text("(lower is better)")
    expect(slip).to_contain_text("(1 error)")  # q0: left out of the mean, counted here


def test_the_comparison_marks_failures_edits_and_directions(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    a, b = runs["a"], runs["b"]
    page.goto(f"{collector.http_url}/experiments/compare?a={a}&b={b}")
    expect(page.locator("p.dataset-changed")).to_contain_text("A ran dataset")
    rows = page.locator("table.items-compare tbody tr")
    expect(rows).to_have_count(5)  # q0..q4: the item only A has is listed too
    kinds = [row.split("\n")[1].strip() for row in rows.locator("td:first-child").all_inner_texts()]
    assert kinds[:2] == ["failed", "failed"]  # what B could not run or score comes first
    assert sorted(kinds[2:]) == ["better", "only in A", "only in B"]
    q1 = rows.filter(has_text="q1")
    expect(q1.locator("td").nth(3)).to_have_text("RuntimeError: boom")
    q0_row = rows.filter(has_text="A0!")
    expect(q0_row).to_contain_text("expected (A)")  # A was scored against a0, B against A0!
    expect(q0_row.locator("td").nth(4).locator("span.failed")).to_have_text(
        "ValueError: cannot judge"
    )
    # slip is lower-is-better: 1 → 0 is an improvement, shown as one.
    q2 = rows.filter(has_text="q2")
    expect(q2.locator("td").nth(4).locator("span.better")).to_have_count(2)
    expect(q2.locator("td").nth(4).locator("span.worse")).to_have_count(0)
