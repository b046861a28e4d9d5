"""The CI gate on a small golden set, as CI runs it (a subprocess, no terminal): a total
regression fails, its run never becomes the baseline, the verdicts are stored and listed,
repetitions give a noise floor, and tables are printed whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import RunningCollector

EXPERIMENT_FILE = Path(__file__).with_name("golden_five_experiment.py")


def assay(collector: RunningCollector, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    environment.pop("COLUMNS", None)  # as in CI: no terminal, no width
    environment.update(ASSAY_URL=collector.http_url, **env)
    return subprocess.run(
        [sys.executable, "-m", "assay.collector", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def gate(
    collector: RunningCollector, name: str, answers: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return assay(
        collector,
        "eval",
        "run",
        str(EXPERIMENT_FILE),
        *args,
        GOLDEN_ANSWERS=answers,
        GOLDEN_EXPERIMENT=name,
        GOLDEN_DATASET=f"{name}-set",
    )


def runs_of(collector: RunningCollector, name: str) -> list[dict[str, object]]:
    listed = assay(collector, "experiments", "list", "--name", name, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_a_total_regression_on_five_items_fails_and_never_becomes_the_baseline(
    collector: RunningCollector,
) -> None:
    name = f"golden-{uuid.uuid4().hex[:8]}"
    first = gate(collector, name, "good", "--baseline", name)
    assert first.returncode == 0, first.stderr
    assert "nothing to compare with" in first.stderr  # its first run: it becomes the baseline

    dropped = gate(collector, name, "bad", "--baseline", name)
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert "exact_match mean dropped by 0.800 against" in dropped.stderr
    assert "(0.800 → 0.000)" in dropped.stderr
    # The small set is named as the reason the test cannot decide, and the fallback given.
    assert "5 items are too few for the sign-flip test to reach p < 0.05" in dropped.stderr
    assert "smallest p is 0.0625" in dropped.stderr

    again = gate(collector, name, "bad", "--baseline", name)
    assert again.returncode == 1, again.stderr  # still held to the passing run, not the failed one
    assert "(0.800 → 0.000)" in again.stderr

    runs = runs_of(collector, name)
    assert [r["verdict"] for r in runs] == ["failed", "failed", "passed"]  # newest first
    passing = runs[2]["experiment_id"]
    assert {r["gate"]["baseline_id"] for r in runs[:2]} == {passing}  # type: ignore[index]
    assert runs[0]["gate"]["reasons"] == [  # type: ignore[index]
        f"exact_match mean dropped by 0.800 against {name} (0.800 → 0.000), more than the "
        "tolerance 0.05"
    ]
    markdown = assay(collector, "experiments", "list", "--name", name, "--format", "markdown")
    assert (
        "| started (UTC) | name | id | dataset | items | status | verdict | scores |"
        in markdown.stdout
    )
    assert markdown.stdout.count("| failed |") == 2
    # A failed run named by its id is the baseline asked for, and the gate says what it is.
    failed_id = str(runs[0]["experiment_id"])
    chosen = gate(collector, f"{name}-fix", "good", "--baseline", failed_id)
    assert chosen.returncode == 0, chosen.stderr
    assert f"the baseline {failed_id} failed its own gate" in " ".join(chosen.stderr.split())


def test_repetitions_from_the_command_line_and_the_noise_floor(
    collector: RunningCollector,
) -> None:
    name = f"golden-reps-{uuid.uuid4().hex[:8]}-with-a-long-name-that-a-narrow-table-would-fold"
    done = gate(collector, name, "good", "--repetitions", "3", "--fail-under", "exact_match=0.8")
    assert done.returncode == 0, done.stderr
    assert "5 items × 3 repetitions, 0 failed" in done.stdout
    run = runs_of(collector, name)[0]
    assert run["repetitions"] == 3 and run["item_count"] == 15
    shown = assay(collector, "experiments", "show", name, "--format", "json")
    items = json.loads(shown.stdout)["items"]
    assert sorted((i["item_id"], i["repetition"]) for i in items)[:3] == sorted(
        (items[0]["item_id"], r) for r in range(3)
    )
    itself = assay(collector, "experiments", "compare", name, name)
    assert itself.returncode == 0, itself.stderr
    assert "same run (noise ±0.000)" in itself.stdout  # a deterministic task has no noise
    assert "A run compared with itself (3 repetitions)" in itself.stdout
    # Outside a terminal a table is printed whole: the long name is neither folded nor cut.
    listed = assay(collector, "experiments", "list", "--name", name)
    assert name in listed.stdout and "…" not in listed.stdout
