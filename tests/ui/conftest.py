"""Fixtures for the UI tests: seeded calls and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import RunningCollector
from tests.ui.seed import Seeded, seed_calls

CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
# Set to a folder (docs/screenshots) to save a picture of each page while the tests run.
SCREENSHOTS = os.environ.get("ASSAY_SCREENSHOTS")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium. Missing Chromium fails the tests: they must run, not skip
    (`.ci/run` installs it; `apt-get install chromium` by hand). Package-scoped: Playwright's
    sync API keeps an event loop running in this thread while it is open, so `asyncio.run` in a
    test collected after the UI tests (`pytest tests/ui tests/instrumentation`) would fail."""
    executable = shutil.which(CHROMIUM) or CHROMIUM
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: its own cookies, so tests do not share a reviewer."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module")
def seeded(collector: RunningCollector) -> Seeded:
    return seed_calls(collector, f"ui-{uuid.uuid4().hex[:8]}")


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
