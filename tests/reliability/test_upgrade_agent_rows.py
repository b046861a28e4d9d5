"""The folder Assay 0.1.0 left (data/build_previous_release.py, made by that release's own
collector) upgraded by this one: its spans, stored before the agent-run tables existed, get
their rows, so its runs are summarized like any other."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import start_collector
from tests.reliability.test_lifecycle import PREVIOUS_RELEASE, V0_SPOOLED, V0_STORED

pytestmark = pytest.mark.integration

BACKFILL_LOG = "agent rows of spans stored before migration 011 written"


def test_the_spans_0_1_0_stored_get_their_agent_rows_once(tmp_path: Path) -> None:
    with tarfile.open(PREVIOUS_RELEASE) as tar:
        tar.extractall(tmp_path, filter="tar")
    storage = tmp_path / "assay-data"
    first = start_collector(storage, tmp_path / "first.log")
    try:
        runs = "SELECT count() AS n FROM trace_summary WHERE service_name LIKE 'v0-%'"
        deadline = time.monotonic() + 120
        while first.query(runs)[0]["n"] < V0_STORED + V0_SPOOLED and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = first.query(
            "SELECT service_name AS service, count() AS spans, countIf(llm) AS calls,"
            " sum(input_tokens) AS tokens FROM trace_spans FINAL"
            " WHERE service_name LIKE 'v0-%' GROUP BY service ORDER BY service"
        )
        calls = first.query(
            "SELECT service_name AS service, count() AS spans, count() AS calls,"
            " sum(input_tokens) AS tokens FROM llm_calls FINAL"
            " WHERE service_name LIKE 'v0-%' GROUP BY service ORDER BY service"
        )
        # v0-stored was stored by 0.1.0 (no rows until now); v0-spooled by this collector's
        # replay of 0.1.0's spool (rows written as it stored them).
        assert rows == calls
        assert [r["spans"] for r in rows] == [V0_SPOOLED, V0_STORED]
        assert first.query(runs)[0]["n"] == V0_STORED + V0_SPOOLED
        assert BACKFILL_LOG in first.log()
    finally:
        assert first.stop() == 0
    second = start_collector(storage, tmp_path / "second.log")
    try:
        assert second.query(
            "SELECT count() AS n FROM trace_spans WHERE service_name LIKE 'v0-%'"
        ) == [{"n": V0_STORED + V0_SPOOLED}]
    finally:
        assert second.stop() == 0
    assert "stored before migration 011" not in second.log()
