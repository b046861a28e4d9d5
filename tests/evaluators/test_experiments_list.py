"""`assay experiments list` against a real collector: what a row says beside an evaluator's mean
when the number alone would mislead (items whose task failed, evaluator errors left out of the
mean, a lower-is-better evaluator)."""

from __future__ import annotations

import time
import uuid

import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.evaluators import Dataset, ExperimentResult, ItemResult, Score
from assay.evaluators.base import LOWER_IS_BETTER
from assay.evaluators.client import CollectorClient
from tests.conftest import RunningCollector

pytestmark = pytest.mark.integration


def test_a_row_says_what_failed_and_which_way_is_good(collector: RunningCollector) -> None:
    name = f"list-{uuid.uuid4().hex[:8]}"
    client = CollectorClient(collector.http_url)
    dataset = Dataset(name, [{"id": f"q{i}", "input": f"q{i}"} for i in range(4)])
    dataset.push(client=client)
    now = time.time()

    def item(index: int) -> ItemResult:
        judged = Score(name="judge", value=1.0, passed=True)
        slips = Score(name="slips", value=0.0, passed=True, direction=LOWER_IS_BETTER)
        return ItemResult(
            item_id=f"q{index}",
            input=f"q{index}",
            output="ok",
            started_at=now,
            scores={"judge": judged, "slips": slips},
        )

    items = [item(i) for i in range(4)]
    items[1].scores["judge"] = Score.failure("TimeoutError: no answer", name="judge")
    items[2].status, items[2].error, items[2].scores = "error", "RuntimeError: boom", {}
    run = ExperimentResult(
        uuid.uuid4().hex, name, name, dataset.version, items, {"judge": "1", "slips": "1"}
    )
    run.started_at, run.ended_at = now, now
    client.record_experiment(run.record())
    client.add_experiment_items(run.experiment_id, [i.to_payload() for i in items])
    listed = CliRunner(env={"COLUMNS": "250"}).invoke(
        main, ["experiments", "list", "--name", name, "--url", collector.http_url]
    )
    assert listed.exit_code == 0, listed.output
    assert "4, 1 failed" in listed.output
    assert "judge=1.000 (1 error)" in listed.output
    assert "slips=0.000 (lower is better)" in listed.output
