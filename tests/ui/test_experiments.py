"""Datasets and experiments through the UI on a real collector: a call added to a dataset with
an edited expected output, and two experiment runs compared item by item."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import RunningCollector
from tests.ui.conftest import screenshot
from tests.ui.seed import Seeded

QUESTIONS = ["capital of France?", "capital of Italy?", "capital of Spain?", "capital of Peru?"]
ANSWERS = ["Paris", "Rome", "Madrid", "Lima"]
# exact_match per item: B loses item 1, wins item 2, the rest unchanged.
RUNS = {"a": ["Paris", "Rome", "Barcelona", "Lima"], "b": ["Paris", "Milan", "Madrid", "Lima"]}


def _post(collector: RunningCollector, path: str, body: object) -> dict[str, object]:
    response = httpx.post(f"{collector.http_url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def two_runs(collector: RunningCollector) -> tuple[str, str, list[str]]:
    """A dataset and runs A and B on it, recorded through the experiments API."""
    name = f"capitals-{uuid.uuid4().hex[:6]}"
    items = [{"input": q, "expected": a} for q, a in zip(QUESTIONS, ANSWERS, strict=True)]
    version = _post(collector, "/api/datasets", {"name": name, "items": items})["version"]
    stored = httpx.get(f"{collector.http_url}/api/datasets/{name}").json()["items"]
    ids = [item["id"] for item in stored]
    run_ids = []
    for run, outputs in RUNS.items():
        run_id = f"{name}-{run}"
        started = time.time() - (60 if run == "a" else 0)
        experiment = {
            "experiment_id": run_id,
            "name": f"prompt-{run}",
            "dataset_name": name,
            "dataset_version": version,
            "evaluators": {"exact_match": "1"},
            "started_at": started,
            "ended_at": started + 5,
            "status": "completed",
            "item_count": len(ids),
        }
        _post(collector, "/api/experiments", experiment)
        results = [
            {
                "item_id": item_id,
                "output": output,
                "started_at": started + 1,
                "scores": [
                    {
                        "name": "exact_match",
                        "value": float(output == answer),
                        "passed": output == answer,
                    }
                ],
            }
            for item_id, output, answer in zip(ids, outputs, ANSWERS, strict=True)
        ]
        _post(collector, f"/api/experiments/{run_id}/items", {"items": results})
        run_ids.append(run_id)
    return run_ids[0], run_ids[1], ids


def test_comparing_two_runs_puts_the_regression_first(
    page: Page, collector: RunningCollector, two_runs: tuple[str, str, list[str]]
) -> None:
    run_a, run_b, _ = two_runs
    page.goto(f"{collector.http_url}/experiments")
    page.check(f"input[name=a][value='{run_a}']")
    page.check(f"input[name=b][value='{run_b}']")
    screenshot(page, "experiments")
    page.click("button:has-text('Compare')")
    expect(page).to_have_url(re.compile(f"/experiments/compare\\?.*\\ba={run_a}\\b"))
    assert f"b={run_b}" in page.url

    row = page.locator("table.evaluators tbody tr", has_text="exact_match")
    cells = row.locator("td").all_inner_texts()
    # name, items, mean A, mean B, B − A, noise, interval, p, verdict, better/worse/same
    assert cells[:6] == ["exact_match", "4", "0.75", "0.75", "+0.000", "—"]
    assert re.fullmatch(r"\[-0\.\d{3}, \+0\.\d{3}\]", cells[6])
    assert cells[8] == "no significant change"
    assert cells[9] == "1 / 1 / 2"

    items = page.locator("table.items-compare tbody tr")
    expect(items).to_have_count(4)
    expect(items.first).to_have_class(re.compile("worse"))
    expect(items.first).to_contain_text("capital of Italy?")
    expect(items.first.locator("td.text").nth(0)).to_have_text("Rome")
    expect(items.first.locator("td.text").nth(1)).to_have_text("Milan")
    expect(items.last).to_have_class(re.compile("better"))
    expect(items.last).to_contain_text("Madrid")
    screenshot(page, "compare")


def test_comparing_needs_two_known_runs(page: Page, collector: RunningCollector) -> None:
    response = page.goto(f"{collector.http_url}/experiments/compare?a=x")
    assert response is not None and response.status == 400
    response = page.goto(f"{collector.http_url}/experiments/compare?a=nope-1&b=nope-2")
    assert response is not None and response.status == 404
    expect(page.locator("p.error")).to_contain_text("no experiment run 'nope-1'")


def test_a_call_added_to_a_dataset_with_an_edited_expected_output(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    span = seeded.tool_span
    name = f"from-calls-{uuid.uuid4().hex[:6]}"
    page.goto(f"{collector.http_url}/calls/{span}")
    page.click("summary:has-text('Add to dataset')")
    expected = page.locator(".add-to-dataset textarea[name=expected]")
    expect(expected).to_have_value("It is 21 °C and clear in Paris.")  # the call's answer
    expected.fill("It is 21 °C and sunny in Paris.")
    page.fill(".add-to-dataset input[name=dataset]", name)
    page.click(".add-to-dataset button")

    expect(page).to_have_url(re.compile(f"/datasets/{name}\\?version="))
    added = page.locator("table.items tr.added")
    expect(added).to_contain_text("just added")
    expect(added).to_contain_text("It is 21 °C and sunny in Paris.")
    expect(added.locator("a:has-text('call')")).to_have_attribute("href", f"/calls/{span}")
    rows = collector.query(
        "SELECT expected, source_span_id, input FROM assay.dataset_items FINAL"
        f" WHERE dataset_name = '{name}'"
    )
    assert len(rows) == 1
    assert rows[0]["expected"] == '"It is 21 °C and sunny in Paris."'
    assert rows[0]["source_span_id"] == span
    assert "weather in Paris" in str(rows[0]["input"])
    # The item's long input (a whole conversation, pretty JSON) wraps: the page is no wider
    # than the window, at a laptop's width and a narrow one.
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 900})
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{wide} px wide at {width}"
    screenshot(page, "dataset")


def test_a_calls_whole_run_added_to_a_dataset(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    span = seeded.tool_span
    (call,) = collector.query(f"SELECT trace_id FROM assay.llm_calls WHERE span_id = '{span}'")
    name = f"from-runs-{uuid.uuid4().hex[:6]}"
    page.goto(f"{collector.http_url}/calls/{span}")
    page.click("summary:has-text('Add to dataset')")
    page.select_option(".add-to-dataset select[name=scope]", "trace")
    page.fill(".add-to-dataset input[name=dataset]", name)
    page.click(".add-to-dataset button")

    expect(page).to_have_url(re.compile(f"/datasets/{name}\\?version="))
    rows = collector.query(
        "SELECT source_trace_id, source_span_id, metadata FROM assay.dataset_items FINAL"
        f" WHERE dataset_name = '{name}'"
    )
    assert len(rows) == 1
    assert (rows[0]["source_trace_id"], rows[0]["source_span_id"]) == (call["trace_id"], "")
    assert '"level":"trace"' in str(rows[0]["metadata"]).replace(" ", "")


def test_adding_to_a_dataset_is_protected_and_checked(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    url = f"{collector.http_url}/calls/{seeded.span_ids[0]}/dataset"
    refused = httpx.post(url, data={"dataset": "sneaky", "expected": "x"})
    assert refused.status_code == 403
    token = {"csrf": "t"}
    empty = httpx.post(url, data={**token, "dataset": " "}, cookies={"assay_csrf": "t"})
    assert empty.status_code == 400 and "name the dataset" in empty.text
    unknown = httpx.post(
        f"{collector.http_url}/calls/00000000deadbeef/dataset",
        data={**token, "dataset": "x"},
        cookies={"assay_csrf": "t"},
    )
    assert unknown.status_code == 404
    assert collector.query("SELECT count() AS n FROM assay.datasets WHERE name = 'sneaky'") == [
        {"n": 0}
    ]
