"""What every Assay dashboard shares: its frame (tags, time picker, refresh, links to the other
dashboards and to the Assay UI), its variables, and links from table cells to the UI."""

from __future__ import annotations

from dataclasses import fields
from urllib.parse import urlencode

from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    DashboardLink,
    QueryVariable,
    TextBoxVariable,
    TimePicker,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import DashboardLink as DashboardLinkModel

from assay.collector.grafana.query import DATASOURCE
from assay.collector.grafana.sql import INCLUDE_EXPERIMENTS, Variable
from assay.collector.records.calls import CallFilters

TAGS = ["assay", "llm"]
# The Assay UI's call page; a text box on every dashboard so a deployment can point it elsewhere.
ASSAY_URL = "assay_url"
CALL_PAGE = "${assay_url}/calls/${__data.fields.span_id}"
TRACE_LINKS = {"span_id": ("Open the call in Assay", CALL_PAGE)}


def calls_page(**filters: str) -> str:
    """A link to the Assay UI's list of calls narrowed by `filters` (the UI's own filter names;
    a value may be a table cell: `"${__data.fields.model}"`, URL-encoded by Grafana)."""
    known = {f.name for f in fields(CallFilters)}
    unknown = set(filters) - known
    if unknown:
        raise ValueError(f"the calls page has no filter {sorted(unknown)}; it has {sorted(known)}")
    encoded = {
        name: value.replace("}", ":percentencode}") if value.startswith("${__data") else value
        for name, value in filters.items()
    }
    query = urlencode(encoded, safe="${}:._")
    return "${assay_url}/calls" + (f"?{query}" if query else "")


def query_variable(variable: Variable, several: bool = True) -> cogbuilder.Builder[VariableModel]:
    """A variable whose options come from a query; `several`: multi-value with "All" (default)."""
    built = (
        QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query(variable.options_sql)
        .definition(variable.options_sql)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    if not several:
        return built
    return (
        built.sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _assay_url() -> cogbuilder.Builder[VariableModel]:
    return TextBoxVariable(ASSAY_URL).label("Assay UI").default_value("http://localhost:4318")


def _experiment_switch() -> cogbuilder.Builder[VariableModel]:
    """Off by default: production panels leave experiment runs out."""
    return (
        CustomVariable(INCLUDE_EXPERIMENTS)
        .label("Include experiments")
        .description("Count experiment runs (calls with an experiment id) as traffic too.")
        .values("No : 0,Yes : 1")
        .allow_custom_value(False)
        .current(VariableOption(selected=True, text="No", value="0"))
    )


def _links() -> list[cogbuilder.Builder[DashboardLinkModel]]:
    """The other Assay dashboards (same time range and variables) and the Assay UI."""
    return [
        DashboardLink("Assay dashboards")
        .type(DashboardLinkType.DASHBOARDS)
        .tags(["assay"])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True),
        DashboardLink("Calls in the Assay UI")
        .type(DashboardLinkType.LINK)
        .url(calls_page())
        .icon("external link")
        .tooltip("Read, grade and compare the calls behind these panels")
        .target_blank(True),
    ]


def new_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[Variable],
    experiment_switch: bool = True,
) -> Dashboard:
    """A dashboard with the call `variables`, the experiment switch (production dashboards),
    the Assay UI address, and links to the others."""
    extra = [_experiment_switch()] if experiment_switch else []
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .timepicker(TimePicker().refresh_intervals(["30s", "1m", "5m", "15m", "1h"]))
        .variables([*(query_variable(v) for v in variables), *extra, _assay_url()])
        .links(_links())
    )
