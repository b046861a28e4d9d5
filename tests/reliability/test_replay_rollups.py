"""A segment the first run stored, then replayed after a crash, counts once on the dashboards.

The first start of a collector creates the schema and writes in the same process; a crash
between storing a segment and releasing it from the spool replays it at the next start. Each
run here is a process of its own, as collectors are: the replay must leave every rollup where
the first run put it (it counted every replayed call twice before the views were reattached
after the migrations)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay.collector.spool import DiskSpool
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.reliability.replay_writer import CALL_COUNTS

pytestmark = pytest.mark.integration

CALLS = 40


def _run(store: Path, spool: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.replay_writer", str(store), str(spool)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_segment_replayed_after_the_first_run_counts_once_in_every_rollup(
    tmp_path: Path,
) -> None:
    spool = DiskSpool(tmp_path / "spool", max_bytes=10**8, max_age=60)
    spans = [
        make_span(
            attrs={
                sc.REQUEST_MODEL: "gpt-4o",
                sc.USAGE_INPUT_TOKENS: 10,
                sc.USAGE_OUTPUT_TOKENS: 5,
                sc.USER_ID: f"user-{i % 3}",
                sc.SESSION_ID: f"session-{i % 4}",
            }
        )
        for i in range(CALLS)
    ]
    spool.append("traces", make_request("replayed", *spans).SerializeToString())
    spool.close()
    # The spool as the crash left it: the segment stored by the first run, not yet released.
    shutil.copytree(tmp_path / "spool", tmp_path / "left-by-the-crash")

    first = _run(tmp_path / "data", tmp_path / "spool")  # creates the schema, then writes
    replay = _run(tmp_path / "data", tmp_path / "left-by-the-crash")

    assert first["counts"] == dict.fromkeys(CALL_COUNTS, CALLS)
    assert replay["deduplicated"] == {
        "otel_traces": CALLS,
        "llm_calls": CALLS,
        "trace_spans": CALLS,
    }
    assert replay["counts"] == first["counts"]
