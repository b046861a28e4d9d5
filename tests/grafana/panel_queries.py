"""Every query of the checked-in dashboards, read from their JSON, ready to expand and run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from assay.collector.grafana.macros import QueryRequest, Selection, interpolate

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


class Queries(Protocol):
    """A store, or a collector's query API: column names and rows of a query."""

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]: ...


def switches(dashboard: str) -> dict[str, str]:
    """The dashboard's custom variables (fixed options) and their default values."""
    return {
        variable["name"]: variable["current"]["value"]
        for variable in dashboards()[dashboard]["templating"]["list"]
        if variable["type"] == "custom"
    }


def resolve_variables(
    store: Queries,
    dashboard: str,
    start: datetime,
    end: datetime,
    pick: dict[str, str | list[str]] | None = None,
) -> QueryRequest:
    """A request with the dashboard's variables as Grafana holds them: in order, each one's
    options (value, label) from its own query, seeing the ones before it; `pick` chooses by
    label (a list for several), the rest stay "All"; experiments A and B are the two latest
    listed."""
    request = QueryRequest(start, end)
    for name, value in switches(dashboard).items():
        request.variables[name] = Selection.of(str((pick or {}).get(name, value)))
    for variable in (v for v in variable_queries() if v.dashboard == dashboard):
        _, rows = store.query(interpolate(variable.sql, request))
        values = {str(row[1]): str(row[0]) for row in rows}
        assert values and all(values), f"{dashboard}: ${variable.name} lists {values}"
        chosen = (pick or {}).get(variable.name)
        if variable.name in ("experiment_a", "experiment_b"):
            listed = [str(row[0]) for row in rows]
            request.variables[variable.name] = Selection.of(listed[variable.name[-1] == "a"])
        elif chosen is None:
            request.variables[variable.name] = Selection.all_of(list(values.values()))
        else:
            labels = chosen if isinstance(chosen, list) else [chosen]
            assert set(labels) <= set(values), (variable.name, labels, list(values))
            request.variables[variable.name] = Selection.of(*(values[x] for x in labels))
    return request
