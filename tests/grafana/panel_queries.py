"""Every query of the checked-in dashboards, read from their JSON, ready to expand and run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    title: str
    panel_type: str
    sql: str
    format: int
    min_interval: str | None

    @property
    def id(self) -> str:
        return f"{self.dashboard}: {self.title}"


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    sql: str


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panel_queries() -> Iterator[PanelQuery]:
    for name, model in dashboards().items():
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                yield PanelQuery(
                    name,
                    panel["title"],
                    panel["type"],
                    target["rawSql"],
                    target["format"],
                    panel.get("interval"),
                )


def variable_queries() -> Iterator[VariableQuery]:
    for name, model in dashboards().items():
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                yield VariableQuery(name, variable["name"], variable["query"])
