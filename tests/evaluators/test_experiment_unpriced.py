"""An experiment whose task makes calls without a cost (a model the price table lacks, a call
that fails) says so wherever its cost is shown: per item, per run, in the A-against-B comparison,
in the notebook's result, the CLI and the UI; and its count is the collector's own count of
those calls (llm_calls rows with cost_usd NULL: pricing.UNPRICED_CALLS).

Real parts: `assay eval run` in a subprocess, the real openai client against the fake model, the
collector on embedded storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.demo.fake_openai import FakeOpenAI
from assay.evaluators import ExperimentResult, compare
from tests.conftest import RunningCollector
from tests.evaluators.gate_runs import eval_run

EXPERIMENT_FILE = Path(__file__).with_name("unpriced_experiment.py")
SUFFIX = uuid.uuid4().hex[:8]
MIXED = f"costs-mixed-{SUFFIX}"
PRICED = f"costs-priced-{SUFFIX}"
LOWER_BOUND = "2 calls unpriced, 1 of them failed: the cost is a lower bound"


def run_experiment(collector: RunningCollector, fake: FakeOpenAI, mode: str, name: str) -> None:
    # The budget cannot judge the item whose cost leaves out an unpriced call: allowed.
    done = eval_run(
        collector,
        fake,
        EXPERIMENT_FILE,
        "--max-failed-items",
        "1",
        UNPRICED_MODE=mode,
        UNPRICED_EXPERIMENT=name,
        UNPRICED_DATASET=f"costs-{SUFFIX}",
        COLUMNS="200",
    )
    assert done.code == 0, done.stderr + done.stdout


@pytest.fixture(scope="module")
def runs(collector: RunningCollector) -> Iterator[dict[str, ExperimentResult]]:
    with FakeOpenAI(latency=0.0) as fake:
        run_experiment(collector, fake, "mixed", MIXED)
        run_experiment(collector, fake, "priced", PRICED)
    yield {name: ExperimentResult.load(name, url=collector.http_url) for name in (MIXED, PRICED)}


def test_the_run_counts_the_calls_its_cost_leaves_out_as_the_collector_does(
    runs: dict[str, ExperimentResult], collector: RunningCollector
) -> None:
    mixed = runs[MIXED]
    by_item = {item.item_id: item for item in mixed.items}
    assert {k: (i.unpriced_calls, i.unpriced_failed) for k, i in by_item.items()} == {
        "priced": (0, 0),
        "house": (1, 0),
        "broken": (1, 1),
    }
    assert by_item["house"].cost_usd is None and by_item["broken"].cost_usd is not None
    assert by_item["house"].model == "house-model-7b"
    # A cost budget cannot pass a cost that leaves out a call that succeeded unpriced; the
    # failed call's item is judged on its priced call (a failed call is rarely billed).
    budget = {k: i.scores["cost_budget"] for k, i in by_item.items()}
    assert "leaves out calls without a price" in budget["house"].error
    assert budget["broken"].error == "" and budget["broken"].passed
    assert budget["priced"].error == "" and budget["priced"].passed
    task = mixed.task_summary
    assert (task.unpriced_calls, task.unpriced_failed, task.lower_bound) == (2, 1, True)
    assert runs[PRICED].task_summary.unpriced_calls == 0
    assert not runs[PRICED].task_summary.lower_bound
    # The same calls the collector could not price (every page's and panel's count).
    stored = collector.wait_for_rows(
        "SELECT countIf(cost_usd IS NULL) AS unpriced,"
        " countIf(cost_usd IS NULL AND status = 'error') AS failed, count() AS calls"
        f" FROM llm_calls WHERE experiment_id = '{mixed.experiment_id}' HAVING calls = 4",
        1,
    )
    assert stored == [{"unpriced": 2, "failed": 1, "calls": 4}]
    priced = collector.query(
        f"SELECT sum(cost_usd) AS cost FROM llm_calls WHERE experiment_id = '{mixed.experiment_id}'"
    )
    assert priced[0]["cost"] == pytest.approx(task.cost_usd)


def test_the_notebook_and_the_cli_call_the_cost_a_lower_bound(
    runs: dict[str, ExperimentResult], collector: RunningCollector
) -> None:
    assert LOWER_BOUND in str(runs[MIXED]._headline())
    assert "unpriced" not in runs[PRICED]._headline()
    runner = CliRunner(env={"COLUMNS": "250"})
    url = ["--url", collector.http_url]
    shown = runner.invoke(main, ["experiments", "show", MIXED, *url])
    assert shown.exit_code == 0, shown.output
    assert LOWER_BOUND in " ".join(shown.output.split())
    listed = runner.invoke(
        main, ["experiments", "list", "--name", MIXED, "--format", "markdown", *url]
    )
    assert listed.exit_code == 0, listed.output
    assert LOWER_BOUND in listed.output


def test_a_comparison_does_not_call_the_lower_bound_cheaper(
    runs: dict[str, ExperimentResult], collector: RunningCollector
) -> None:
    comparison = compare(runs[PRICED], runs[MIXED])  # B has the unpriced calls
    cost = dict((label, (a, b)) for label, a, b in comparison.task_rows())["cost"]
    assert LOWER_BOUND in cost[1] and "unpriced" not in cost[0]
    note = comparison.cost_note()
    assert note.startswith(f"B: {LOWER_BOUND}")
    # B's priced calls alone may cost less or more than A's; only more would be known.
    a_cost, b_cost = runs[PRICED].task_summary.cost_usd, runs[MIXED].task_summary.cost_usd
    assert a_cost is not None and b_cost is not None
    expected = (
        "B cost more all the same" if b_cost >= a_cost else "which run costs less is not known"
    )
    assert note.endswith(expected)
    assert note in str(comparison).replace("\n", " ") or note in " ".join(str(comparison).split())
    assert compare(runs[PRICED], runs[PRICED]).cost_note() == ""
    runner = CliRunner(env={"COLUMNS": "250"})
    compared = runner.invoke(
        main, ["experiments", "compare", PRICED, MIXED, "--url", collector.http_url]
    )
    assert compared.exit_code == 0, compared.output
    assert note in " ".join(compared.output.split())


def test_the_ui_says_so_on_the_run_and_compare_pages(
    runs: dict[str, ExperimentResult], collector: RunningCollector
) -> None:
    mixed, priced = runs[MIXED], runs[PRICED]
    run_page = httpx.get(f"{collector.http_url}/experiments/{mixed.experiment_id}", timeout=30)
    assert run_page.status_code == 200
    assert LOWER_BOUND in run_page.text
    assert "1 call unpriced, 1 of them failed</small>" in run_page.text  # the broken item
    assert "1 call unpriced: the cost is a lower bound" in run_page.text  # the house item
    page = httpx.get(
        f"{collector.http_url}/experiments/compare",
        params={"a": priced.experiment_id, "b": mixed.experiment_id},
        timeout=30,
    )
    assert page.status_code == 200
    assert compare(priced, mixed).cost_note().replace("'", "&#39;") in page.text
