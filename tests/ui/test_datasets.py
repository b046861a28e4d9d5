"""Datasets and experiment runs in the browser, on a collector served in this process around the
session's embedded store (so the test can lay down dataset and experiment rows itself)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from assay.collector.settings import CollectorSettings
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import free_port
from tests.faults import FaultyStore
from tests.reliability.inprocess import serving
from tests.ui.conftest import screenshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ui_url(
    embedded_store: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = CollectorSettings(
        grpc_port=free_port(),
        http_port=free_port(),
        storage=Path(tmp_path_factory.mktemp("inprocess-ui")),
        spool="memory",
    )
    with serving(settings, FaultyStore(embedded_store)) as endpoints:
        yield endpoints.http_url


def _insert(store: EmbeddedStore, table: str, rows: list[dict[str, object]]) -> None:
    names = list(rows[0])
    store.insert(table, [[r[n] for r in rows] for n in names], names)


@pytest.fixture(scope="module")
def golden(embedded_store: EmbeddedStore) -> str:
    """A dataset in two versions and two experiment runs on the newer one."""
    name = f"golden-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    _insert(
        embedded_store,
        "datasets",
        [
            {
                "name": name,
                "version": "aaa111",
                "created_at": now - dt.timedelta(days=1),
                "description": "order questions",
                "item_count": 1,
                "metadata": "{}",
            },
            {
                "name": name,
                "version": "bbb222",
                "created_at": now,
                "description": "order questions",
                "item_count": 2,
                "metadata": "{}",
            },
        ],
    )
    _insert(
        embedded_store,
        "dataset_items",
        [
            {
                "dataset_name": name,
                "dataset_version": "bbb222",
                "item_id": f"item-{n}",
                "input": f'{{"question": "Where is order {n}?"}}',
                "expected": f'"Order {n} ships"',
                "context": "",
                "metadata": "{}",
                "source_trace_id": "",
                "source_span_id": "",
                "created_at": now,
            }
            for n in (1, 2)
        ],
    )
    runs = [(f"exp-{name}-a", "prompt v1", 0.5), (f"exp-{name}-b", "prompt v2", 1.0)]
    _insert(
        embedded_store,
        "experiments",
        [
            {
                "experiment_id": run_id,
                "name": label,
                "dataset_name": name,
                "dataset_version": "bbb222",
                "params": "{}",
                "evaluators": {"exact_match": "1"},
                "git_commit": "0123456789abcdef",
                "started_at": now,
                "ended_at": now,
                "status": "completed",
                "item_count": 2,
                "summary": "{}",
            }
            for run_id, label, _ in runs
        ],
    )
    _insert(
        embedded_store,
        "scores",
        [
            {
                "timestamp": now,
                "trace_id": "",
                "span_id": "",
                "name": "exact_match",
                "value": value if n == 1 else 1.0,
                "source": "experiment",
                "experiment_id": run_id,
                "dataset_item_id": f"item-{n}",
            }
            for run_id, _, value in runs
            for n in (1, 2)
        ],
    )
    return name


def test_datasets_list_and_a_dataset_page(page: Page, ui_url: str, golden: str) -> None:
    page.goto(f"{ui_url}/datasets")
    row = page.locator("table.datasets tr", has_text=golden)
    expect(row).to_contain_text("order questions")
    expect(row.locator("code")).to_have_text(["bbb222", "aaa111"])  # newest version first
    screenshot(page, "datasets")
    row.locator(f"a:has-text('{golden}')").click()
    expect(page.locator("h1")).to_contain_text("bbb222")
    expect(page.locator("table.items tbody tr")).to_have_count(2)
    expect(page.locator("table.items pre.json").first).to_have_text(
        '{\n  "question": "Where is order 1?"\n}'
    )
    page.click("ul.versions a:has-text('aaa111')")
    expect(page.locator("table.items .empty")).to_be_visible()


def test_experiment_runs_show_their_mean_scores(page: Page, ui_url: str, golden: str) -> None:
    page.goto(f"{ui_url}/experiments")
    v1 = page.locator("table.runs tr", has_text=f"exp-{golden}-a")
    v2 = page.locator("table.runs tr", has_text=f"exp-{golden}-b")
    expect(v1.locator(".badge")).to_have_text("exact_match 0.75")
    expect(v2.locator(".badge")).to_have_text("exact_match 1.00")
