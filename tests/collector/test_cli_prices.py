"""`assay prices` as people use it, against a real collector on the embedded store: show the
table, refuse a bad file, load a newer one, price stored calls again, and keep the loaded table
in force across a restart."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.collector.test_cli import ASSAY, assay
from tests.conftest import RunningCollector, start_collector

pytestmark = pytest.mark.integration

NEW_PRICES = {
    "taken": "2026-11-30",
    "models": {"acme-large": {"provider": "acme", "input": 2.0, "output": 8.0}},
}


def send_call(collector: RunningCollector, service: str) -> None:
    span = make_span(
        attrs={
            sc.OPERATION_NAME: sc.OP_CHAT,
            sc.PROVIDER_NAME: "acme",
            sc.REQUEST_MODEL: "acme-large",
            sc.USAGE_INPUT_TOKENS: 1000,
            sc.USAGE_OUTPUT_TOKENS: 500,
        }
    )
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=make_request(service, span).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text


def cost_columns(collector: RunningCollector, service: str, count: int) -> list[dict]:
    return collector.wait_for_rows(
        "SELECT cost_usd, cost_source, price_version, input_cost_usd, output_cost_usd "
        f"FROM assay.llm_calls WHERE service_name = '{service}' ORDER BY timestamp",
        count,
    )


def test_load_a_newer_price_file_and_price_stored_calls_again(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "data", tmp_path / "collector.log")
    try:
        url = collector.http_url
        shown = json.loads(assay("prices", "--json", url=url).stdout)
        builtin = shown["version"]
        assert shown["origin"] == "built-in" and shown["taken"] in builtin
        assert "acme-large" not in shown["models"]
        table = assay("prices", "--model", "claude-sonnet-4", url=url)
        assert table.returncode == 0 and "claude-sonnet-4-5" in table.stdout
        assert builtin in table.stderr

        send_call(collector, "svc-a")
        (row,) = cost_columns(collector, "svc-a", 1)
        assert (row["cost_usd"], row["cost_source"], row["price_version"]) == (
            None,
            "unpriced_model",
            "",
        )

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"models": {"acme-large": {"provider": "acme", "input": -2}}}))
        refused = assay("prices", "load", str(bad), url=url)
        assert refused.returncode == 1 and "input must be a number >= 0" in refused.stderr
        # A price no model has (a unit mistaken, digits slipped), and JSON's missing NaN.
        bad.write_text(json.dumps({"models": {"acme-large": {"provider": "acme", "input": 1e308}}}))
        refused = assay("prices", "load", str(bad), url=url)
        assert refused.returncode == 1 and "at most 100,000 (USD per 1M" in refused.stderr
        bad.write_text('{"models": {"acme-large": {"provider": "acme", "input": NaN}}}')
        refused = assay("prices", "load", str(bad), url=url)
        assert refused.returncode == 1 and "NaN is not a JSON number" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert json.loads(assay("prices", "--json", url=url).stdout)["version"] == builtin

        good = tmp_path / "prices.json"
        good.write_text(json.dumps(NEW_PRICES))
        loaded = assay("prices", "load", str(good), url=url)
        assert loaded.returncode == 0, loaded.stderr
        version = json.loads(assay("prices", "--json", url=url).stdout)["version"]
        assert version != builtin and version.startswith("2026-11-30.") and version in loaded.stderr

        since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        done = assay("prices", "recompute", "--since", since, url=url)
        assert done.returncode == 0, done.stderr
        assert "1 call(s) priced again" in done.stderr and "priced 0 → 1" in done.stderr
        (row,) = cost_columns(collector, "svc-a", 1)
        assert row["cost_source"] == "priced" and row["price_version"] == version
        assert (row["input_cost_usd"], row["output_cost_usd"]) == (0.002, 0.004)
        assert row["cost_usd"] == 0.006

        wrong = assay("prices", "recompute", "--since", "last tuesday", url=url)
        assert wrong.returncode == 2 and "last tuesday" in wrong.stderr
    finally:
        collector.stop()

    # Restarted on the same folder: the loaded file is still in force, a call sent now is
    # stored (the first segment of a drained spool once carried the previous life's token,
    # #14) and priced by it, and pricing both lives' calls again leaves one row per call.
    collector = start_collector(tmp_path / "data", tmp_path / "collector-2.log")
    try:
        url = collector.http_url
        shown = json.loads(assay("prices", "--json", url=url).stdout)
        assert (shown["version"], shown["origin"]) == (version, "loaded")
        assert shown["models"]["acme-large"]["input"] == 2.0

        send_call(collector, "svc-a")
        rows = cost_columns(collector, "svc-a", 2)
        assert [(r["cost_source"], r["price_version"]) for r in rows] == [("priced", version)] * 2
        done = assay("prices", "recompute", "--since", since, url=url)
        assert done.returncode == 0, done.stderr
        assert "2 call(s) priced again" in done.stderr and "priced 2 → 2" in done.stderr
        (counted,) = collector.query(
            "SELECT count() AS rows, uniqExact(span_id) AS calls, sum(cost_usd) AS cost "
            "FROM assay.llm_calls WHERE service_name = 'svc-a'"
        )
        assert counted == {"rows": 2, "calls": 2, "cost": 0.012}
        (rollup,) = collector.query(
            "SELECT sum(calls) AS calls, round(sum(cost_usd), 9) AS cost, "
            "sum(unpriced_calls) AS unpriced FROM assay.llm_calls_1m WHERE service_name = 'svc-a'"
        )
        assert rollup == {"calls": 2, "cost": 0.012, "unpriced": 0}
    finally:
        collector.stop()


def test_the_table_is_whole_outside_a_terminal(collector: RunningCollector) -> None:
    """Piped (`assay prices | grep`, a CI log) the table is not cut at rich's 80 columns: every
    model name and price is there to read (they were folded into 'clau…')."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    shown = subprocess.run(
        [*ASSAY, "prices", "--model", "claude-sonnet-4-5", "--url", collector.http_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "claude-sonnet-4-5" in shown.stdout and "cache write" in shown.stdout
