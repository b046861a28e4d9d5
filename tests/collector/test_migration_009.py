"""Migration 009 upgrades a store written before it, in place: every call kept, cost_source
renamed or given its reason, usage_source read from each row, the rollups' unpriced counts kept;
`assay prices recompute` then fills the cost by token class and the rollups' reasons."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.collector.old_schema import old_schema
from tests.collector.test_cli import assay
from tests.conftest import start_collector

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

# Run in a process of its own (chDB keeps one engine per process): the schema as it was before
# 009, and the calls an older collector wrote (the rollup views fill as they did then).
OLD_STORE = old_schema("migration.version >= 9") + textwrap.dedent(
    """
    now = time.time_ns()
    calls = [
        # span, model, input, output, cost, cost_source, status, attributes
        ("s1", "gpt-4o-mini", "1000", "100", "0.00021", "price_table", "ok", "{}"),
        ("s2", "my-finetune", "10", "5", "0.5", "span", "ok", "{}"),
        ("s3", "my-finetune", "10", "5", "NULL", "", "ok", "{}"),
        ("s4", "gpt-4o-mini", "NULL", "NULL", "NULL", "", "error", "{}"),
        ("s5", "gpt-4o-mini", "NULL", "NULL", "NULL", "", "ok",
         "{'assay.usage.reported': 'false'}"),
    ]
    for i, (span, model, inp, out, cost, source, status, attrs) in enumerate(calls):
        store.command(
            "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name, operation,"
            " provider, model, input_tokens, output_tokens, cost_usd, reported_cost_usd,"
            " cost_source, status, user_id, session_id, attributes)"
            f" VALUES (fromUnixTimestamp64Nano({now - i * 1000}), 't1', '{span}', 'old', 'chat',"
            f" 'openai', '{model}', {inp}, {out}, {cost},"
            f" {cost if source == 'span' else 'NULL'}, '{source}', '{status}', 'u1', 'x1',"
            f" {attrs})"
        )
    store.close()
    """
)


def test_an_old_store_is_upgraded_in_place_and_priced_again(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    old = subprocess.run(
        [sys.executable, "-c", OLD_STORE, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert old.returncode == 0, old.stderr
    collector = start_collector(folder, tmp_path / "collector.log")
    try:
        rows = {
            r["span_id"]: r
            for r in collector.query(
                "SELECT span_id, cost_usd, cost_source, usage_source, price_version "
                "FROM assay.llm_calls WHERE service_name = 'old'"
            )
        }
        assert {k: (r["cost_source"], r["usage_source"]) for k, r in rows.items()} == {
            "s1": ("priced", "reported"),
            "s2": ("reported", "reported"),
            "s3": ("unpriced_model", "reported"),
            "s4": ("failed_call", "none"),
            "s5": ("no_usage", "none"),
        }
        assert rows["s1"]["cost_usd"] == 0.00021 and rows["s2"]["cost_usd"] == 0.5
        (rollup,) = collector.query(
            "SELECT sum(calls) AS calls, sum(unpriced_calls) AS unpriced, "
            "sum(unpriced_model_calls + no_usage_calls + failed_unpriced_calls) AS reasons "
            "FROM assay.llm_calls_1m WHERE service_name = 'old'"
        )
        # Counted before reasons were: the total stays, the reasons are unknown until recompute.
        assert (rollup["calls"], rollup["unpriced"], rollup["reasons"]) == (5, 3, 0)

        since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        done = assay("prices", "recompute", "--since", since, url=collector.http_url)
        assert done.returncode == 0, done.stderr
        (s1,) = collector.query(
            "SELECT cost_usd, input_cost_usd + output_cost_usd AS by_class, price_version "
            "FROM assay.llm_calls WHERE span_id = 's1'"
        )
        assert s1["price_version"] and s1["by_class"] == s1["cost_usd"]
        (rollup,) = collector.query(
            "SELECT sum(calls) AS calls, sum(unpriced_calls) AS unpriced, "
            "sum(unpriced_model_calls) AS model, sum(no_usage_calls) AS no_usage, "
            "sum(failed_unpriced_calls) AS failed FROM assay.llm_calls_1h "
            "WHERE service_name = 'old'"
        )
        assert rollup == {"calls": 5, "unpriced": 3, "model": 1, "no_usage": 1, "failed": 1}
        (count,) = collector.query("SELECT count() AS n FROM assay.llm_calls")
        assert count["n"] == 5
    finally:
        collector.stop()
