"""Experiments joined to their calls, in the browser: real runs of the capitals experiment
(`assay eval run`, the real openai client against the fake model, repetitions) read back as a
page per run, each item's calls, the call page naming its experiment with the item's scores,
a comparison with cost, tokens and latency, and production views without experiment calls."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.quickstart import CAPITALS, quickstart_fake
from tests.conftest import RunningCollector
from tests.evaluators.gate_runs import run_gate
from tests.ui.conftest import screenshot

SUFFIX = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = quickstart_fake()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runs(collector: RunningCollector, fake: FakeOpenAI) -> dict[str, str]:
    """Prompt A once, prompt B twice over (two repetitions); their run ids."""
    dataset = f"capitals-ui-{SUFFIX}"
    for prompt, extra in (("a", ()), ("b", ("--repetitions", "2"))):
        done = run_gate(collector, fake, prompt, f"ui-{prompt}-{SUFFIX}", *extra, dataset=dataset)
        assert done.code == 0, done.stderr
    listed = httpx.get(f"{collector.http_url}/api/experiments", params={"limit": 100}).json()
    return {
        run["name"].split("-")[1]: run["experiment_id"]
        for run in listed["experiments"]
        if run["name"].endswith(SUFFIX)
    }


def test_a_run_page_shows_what_ran_what_it_cost_and_every_item(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    page.goto(f"{collector.http_url}/experiments")
    page.click(f"a:has-text('ui-b-{SUFFIX}')")
    expect(page).to_have_url(re.compile(f"/experiments/{runs['b']}$"))
    facts = page.locator("section.facts")
    expect(facts).to_contain_text(f"{len(CAPITALS)} (2 repetitions of each: 20 runs), 0 failed")
    expect(facts).to_contain_text("gpt-4o-mini")  # the params
    expect(facts).to_contain_text("p50")
    assert re.search(r"\$0\.\d+", facts.inner_text())  # the task's cost, priced
    expect(page.locator("h1")).to_contain_text("gate passed")
    evaluators = page.locator("table.evaluators tbody tr")
    expect(evaluators).to_have_count(2)
    expect(evaluators.first).to_contain_text("contains")
    items = page.locator("table.run-items tbody tr")
    expect(items).to_have_count(2 * len(CAPITALS))
    screenshot(page, "run")

    # An item's trace: its calls (experiment calls, shown because a trace was asked for).
    items.first.locator("a:has-text('its calls')").click()
    expect(page).to_have_url(re.compile(r"/calls\?trace_id=[0-9a-f]{32}$"))
    calls = page.locator("table.calls tbody tr.call")
    expect(calls).to_have_count(1)
    calls.first.locator("td a").first.click()

    # The call names its run and item, and carries the item's experiment scores.
    expect(page.locator("section.facts")).to_contain_text(f"ui-b-{SUFFIX}")
    expect(page.locator("section.facts a:has-text('ui-b')")).to_have_attribute(
        "href", f"/experiments/{runs['b']}"
    )
    scores = page.locator("table.scores-table tbody tr")
    expect(scores).to_have_count(2)
    expect(scores.first).to_contain_text("experiment")
    span_id = page.url.rsplit("/", 1)[1].split("?")[0]
    detail = httpx.get(f"{collector.http_url}/api/calls/{span_id}").json()
    assert sorted((s["name"], s["source"]) for s in detail["scores"]) == [
        ("contains", "experiment"),
        ("exact_match", "experiment"),
    ]
    screenshot(page, "call-in-experiment")


def test_the_comparison_shows_cost_tokens_and_latency_beside_the_scores(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    page.goto(f"{collector.http_url}/experiments/compare?a={runs['a']}&b={runs['b']}")
    task = page.locator("table.task-compare tbody")
    for label in ("cost", "tokens", "latency p50 ms", "latency p95 ms", "failed items"):
        expect(task.locator("tr", has_text=label)).to_have_count(1)
    costs = task.locator("tr", has_text="cost").locator("td").all_inner_texts()
    assert all(re.fullmatch(r"\$0\.0*[1-9]\d?", cost) for cost in costs), costs  # no "$0"
    exact = page.locator("table.evaluators tbody tr", has_text="exact_match")
    expect(exact.locator("td.verdict")).to_have_text("better")
    expect(page.locator("table.items-compare tbody tr")).to_have_count(len(CAPITALS))
    expect(page.locator(".same-run")).to_have_count(0)


def test_comparing_a_run_with_itself_warns(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    page.goto(f"{collector.http_url}/experiments/compare?a={runs['a']}&b={runs['a']}")
    expect(page.locator(".same-run")).to_contain_text("A and B are the same run")


def test_production_views_leave_experiment_calls_out_unless_asked(
    page: Page, collector: RunningCollector, runs: dict[str, str]
) -> None:
    experiment_rows = page.locator("table.calls tbody tr.call", has_text="assay-experiments")
    page.goto(f"{collector.http_url}/calls?service=assay-experiments")
    expect(page.locator("table.calls td.empty")).to_be_visible()
    page.select_option("select[name=experiments]", "show")
    page.click("form.filters button[type=submit]")
    expect(experiment_rows.first).to_be_visible()
    page.goto(f"{collector.http_url}/calls?experiments=only")
    assert experiment_rows.count() == page.locator("table.calls tbody tr.call").count() > 0
