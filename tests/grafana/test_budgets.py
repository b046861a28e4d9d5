"""Budgets: one table, documented in the README, overridable by flag or environment, and what the
generated dashboards colour their panels by."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.grafana.budgets import DEFAULTS, BudgetError, budgets, overrides_from

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_table_is_the_budget_table() -> None:
    table = README.split("<!-- budgets:", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$", table, re.M)
    assert rows == [(b.name, b.text(), b.meaning) for b in DEFAULTS]


def test_flags_beat_the_environment_which_beats_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSAY_BUDGET_ERROR_RATE", "0.03")
    monkeypatch.setenv("ASSAY_BUDGET_DAILY_COST_USD", "250")
    table = budgets(overrides_from(["error_rate=0.01"]))
    assert table["error_rate"].value == 0.01
    assert table["daily_cost_usd"].value == 250
    assert table["latency_p95_ms"].value == 10_000


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "no budget named 'nope'"),
        ("error_rate=lots", "'lots' is not a number"),
        ("error_rate=-1", "must be a finite number >= 0"),
        ("error_rate=inf", "must be a finite number >= 0"),
        ("error_rate", "write a budget as NAME=VALUE"),
    ],
)
def test_a_wrong_budget_is_refused_with_its_reason(item: str, message: str) -> None:
    with pytest.raises(BudgetError, match=re.escape(message)):
        budgets(overrides_from([item]))


def _steps(panel: dict[str, object]) -> list[object]:
    config = panel["fieldConfig"]
    assert isinstance(config, dict)
    return [s["value"] for s in config["defaults"]["thresholds"]["steps"]]


def test_the_written_dashboards_colour_by_the_given_budgets(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["grafana", "files", "--out", str(tmp_path), "--budget", "error_rate=0.02"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "dashboards" / "llm-monitoring.json").read_text())
    panels = {p["title"]: p for p in model["panels"]}
    assert _steps(panels["Error rate"]) == [None, 0.01, 0.02]
    assert _steps(panels["p95 latency"]) == [None, 5000, 10000]
    refused = CliRunner().invoke(
        main, ["grafana", "files", "--out", str(tmp_path), "--budget", "x=1"]
    )
    assert refused.exit_code == 2 and "no budget named 'x'" in refused.output
