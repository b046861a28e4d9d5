"""Migration 008 upgrades a store written before it, in place: every row kept, the scores of
the presets that scored the bad outcome 1 marked lower-is-better, experiment runs given their
repetition and an empty verdict, and a second repetition of an item becomes a row of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.collector.old_schema import old_schema
from tests.conftest import start_collector

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

# Run in a process of its own (chDB keeps one engine per process): the schema as it was before
# 008, and the rows an older collector wrote.
OLD_STORE = old_schema("migration.version >= 8") + textwrap.dedent(
    """
    now = time.time_ns()
    rows = [
        # name, span, value, passed, source
        ("pii", "a1", 1.0, "false", "online"),
        ("pii", "a2", 0.0, "true", "online"),
        ("toxicity", "a3", 0.2, "true", "online"),
        ("refusal", "a4", 1.0, "false", "online"),  # the default: 1 = refused, a fail
        ("refusal", "a5", 1.0, "true", "experiment"),  # expect_refusal=True: 1 = refused, a pass
        ("refusal", "a6", 0.0, "NULL", "online"),  # an error score
        ("json_valid", "a7", 1.0, "true", "online"),
        ("feedback", "a1", 0.0, "false", "human"),
    ]
    for name, span, value, passed, source in rows:
        store.command(
            "INSERT INTO assay.scores (timestamp, trace_id, span_id, name, value, passed, source)"
            f" VALUES (fromUnixTimestamp64Nano({now}), 't1', '{span}', '{name}', {value},"
            f" {passed}, '{source}')"
        )
    store.command(
        "INSERT INTO assay.experiments (experiment_id, name, started_at, status, item_count)"
        " VALUES ('e1', 'old-run', now64(3), 'completed', 1)"
    )
    store.command(
        "INSERT INTO assay.experiment_items (experiment_id, item_id, trace_id, span_id, output,"
        " status, started_at, duration_ms) VALUES ('e1', 'i1', 't1', 's1', 'Paris', 'ok',"
        " now64(3), 12)"
    )
    store.close()
    """
)


def test_a_store_from_before_008_is_upgraded_in_place(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    subprocess.run([sys.executable, "-c", OLD_STORE, str(storage)], check=True, timeout=120)
    collector = start_collector(storage, tmp_path / "collector.log")
    try:
        scores = collector.query(
            "SELECT name, span_id, value, passed, source, direction FROM scores"
            " ORDER BY span_id, name"
        )
        directions = {(s["name"], s["span_id"]): s["direction"] for s in scores}
        assert directions == {
            ("pii", "a1"): "lower_is_better",
            ("feedback", "a1"): "higher_is_better",
            ("pii", "a2"): "lower_is_better",
            ("toxicity", "a3"): "lower_is_better",
            ("refusal", "a4"): "lower_is_better",
            ("refusal", "a5"): "higher_is_better",
            ("refusal", "a6"): "lower_is_better",
            ("json_valid", "a7"): "higher_is_better",
        }
        assert [s["value"] for s in scores] == [0.0, 1.0, 0.0, 0.2, 1.0, 1.0, 0.0, 1.0]  # kept
        run = collector.query("SELECT repetitions, verdict, status FROM experiments")
        assert run == [{"repetitions": 1, "verdict": "", "status": "completed"}]

        # The upgraded store takes a run with repetitions: one row per run of an item.
        base = collector.http_url
        started = time.time()
        record = {
            "experiment_id": "e2",
            "name": "new-run",
            "started_at": started,
            "status": "completed",
            "repetitions": 2,
            "verdict": "failed",
            "gate": {"reasons": ["exact_match dropped"]},
        }
        assert httpx.post(f"{base}/api/experiments", json=record).status_code == 200
        items = [
            {
                "item_id": "i1",
                "repetition": r,
                "trace_id": f"{r}" * 32,
                "span_id": f"{r}" * 16,
                "output": "Paris",
                "started_at": started,
                "scores": [{"name": "exact_match", "value": float(r), "passed": bool(r)}],
            }
            for r in (0, 1)
        ]
        added = httpx.post(f"{base}/api/experiments/e2/items", json={"items": items})
        assert added.json() == {"items": 2, "scores": 2}
        stored = httpx.get(f"{base}/api/experiments/e2").json()
        assert stored["experiment"]["verdict"] == "failed"
        assert stored["experiment"]["gate"] == {"reasons": ["exact_match dropped"]}
        assert [(i["repetition"], i["scores"][0]["value"]) for i in stored["items"]] == [
            (0, 0.0),
            (1, 1.0),
        ]
        old = httpx.get(f"{base}/api/experiments/e1").json()
        assert [(i["item_id"], i["repetition"]) for i in old["items"]] == [("i1", 0)]
        baselines = httpx.get(f"{base}/api/experiments", params={"baseline": "true"}).json()
        assert [r["name"] for r in baselines["experiments"]] == ["old-run"]  # not the failed one
    finally:
        collector.stop()
