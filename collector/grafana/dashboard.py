"""What every Assay dashboard shares: its frame (tags, time picker, refresh), its variables
and the link from a call's `span_id` to the Assay UI."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    QueryVariable,
    TextBoxVariable,
    TimePicker,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from assay.collector.grafana.query import DATASOURCE
from assay.collector.grafana.sql import Variable

TAGS = ["assay", "llm"]
# The Assay UI's call page; a text box on every dashboard so a deployment can point it elsewhere.
ASSAY_URL = "assay_url"
CALL_PAGE = "${assay_url}/calls/${__data.fields.span_id}"
TRACE_LINKS = {"span_id": ("Open the call in Assay", CALL_PAGE)}


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


def new_dashboard(uid: str, title: str, description: str, variables: list[Variable]) -> Dashboard:
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
        .variables([*(query_variable(v) for v in variables), _assay_url()])
    )
