"""The README's first hour in a browser, at a laptop's width and a narrow one: open the UI,
filter, open a call, grade it, work through the review queue, add a call to a dataset, and read
two experiment runs and their comparison. Every page visited is no wider than the window, and
none logs a console error (a 404 for a favicon included) or a script error."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.quickstart import quickstart_fake
from tests.conftest import RunningCollector
from tests.evaluators.gate_runs import run_gate
from tests.ui.seed import Seeded

SUFFIX = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def runs(collector: RunningCollector) -> Iterator[dict[str, str]]:
    """Prompt A and prompt B over the capitals dataset, run as CI runs them; their run ids."""
    fake: FakeOpenAI = quickstart_fake()
    try:
        for prompt in ("a", "b"):
            done = run_gate(
                collector, fake, prompt, f"journey-{prompt}-{SUFFIX}", dataset=f"cap-{SUFFIX}"
            )
            assert done.code == 0, done.stderr
    finally:
        fake.stop()
    listed = httpx.get(f"{collector.http_url}/api/experiments", params={"limit": 100}).json()
    yield {
        run["name"].split("-")[1]: run["experiment_id"]
        for run in listed["experiments"]
        if run["name"].endswith(SUFFIX)
    }


class Journey:
    """A browser window of one width that checks every page it lands on."""

    def __init__(self, page: Page, width: int) -> None:
        self.page = page
        self.width = width
        self.visited: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def check(self) -> None:
        self.page.wait_for_load_state("load")
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        assert wide <= self.width, f"{self.page.url} is {wide} px wide at {self.width}"
        assert not self.errors, f"{self.page.url}: {self.errors}"
        self.visited.append(self.page.url)


@pytest.mark.parametrize("width", [1366, 800])
def test_the_readme_journey(
    browser: Browser,
    collector: RunningCollector,
    seeded: Seeded,
    runs: dict[str, str],
    width: int,
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    journey = Journey(page, width)
    base = collector.http_url
    try:
        # Open the UI: the calls list, with its totals.
        page.goto(f"{base}/")
        expect(page.locator("p.totals")).to_contain_text("calls")
        journey.check()
        page.fill("header form.who input[name=name]", f"journey-{width}")
        page.click("header form.who button")
        journey.check()

        # Filter by service, through the form.
        page.select_option("form.filters select[name=service]", seeded.service)
        page.click("form.filters button[type=submit]")
        expect(page).to_have_url(re.compile(f"service={seeded.service}"))
        expect(page.locator("p.totals")).to_contain_text("9 calls")
        journey.check()

        # Open a call and grade it.
        page.click(f"tr[data-span='{seeded.tool_span}'] td.when a")
        expect(page).to_have_url(re.compile(f"/calls/{seeded.tool_span}"))
        journey.check()
        page.click(".your-grade button[value='1']")
        expect(page.locator(".your-grade button[value='1']")).to_have_class(re.compile("chosen"))
        journey.check()

        # The review queue: choose filters, grade with the keyboard, go on to the next.
        page.click("header nav a[href='/review']")
        journey.check()
        page.select_option("form.filters select[name=service]", seeded.service)
        page.click("form.filters button[type=submit]")
        expect(page).to_have_url(re.compile(r"/calls/\w+\?.*review=1"))
        journey.check()
        first = page.url
        page.keyboard.press("1")
        expect(page).not_to_have_url(first)
        journey.check()

        # Add a call to a dataset: the dataset page shows it.
        name = f"journey-{width}-{SUFFIX}"
        page.goto(f"{base}/calls/{seeded.span_ids[2]}")
        page.click("summary:has-text('Add to dataset')")
        page.fill(".add-to-dataset input[name=dataset]", name)
        page.click(".add-to-dataset button")
        expect(page).to_have_url(re.compile(f"/datasets/{name}"))
        expect(page.locator("table.items tr.added")).to_contain_text("just added")
        journey.check()
        page.click("header nav a[href='/datasets']")
        journey.check()

        # Two experiment runs: the list, a run, and their comparison.
        page.click("header nav a[href='/experiments']")
        journey.check()
        page.goto(f"{base}/experiments/{runs['a']}")
        journey.check()
        page.goto(f"{base}/experiments/compare?a={runs['a']}&b={runs['b']}")
        expect(page.locator("table.task-compare")).to_be_visible()
        journey.check()
    finally:
        context.close()
    assert len(journey.visited) == 13
