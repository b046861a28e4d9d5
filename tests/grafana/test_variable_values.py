"""Dashboard variables hold any value safely: quotes, backslashes, commas, braces, Unicode, and
values crafted to end a string literal early all filter exactly and never become SQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from assay.collector.grafana.macros import QueryRequest, Selection, interpolate
from assay.collector.grafana.sql import SERVICE, any_of
from assay.collector.store.base import StoreError
from assay.collector.store.embedded import EmbeddedStore
from tests.grafana.panel_queries import panel_queries, resolve_variables

# Stored service names a filter must match exactly, one by one and together.
HOSTILE = (
    "ends-with-backslash\\",
    "it's",
    "quote-then-backslash'\\",
    "') OR 1=1 --",
    "two,values",
    "{braced}",
    "100%25 percent",
    "Zürich 東京 🚀",
    "tab\there",
)
# Values a crafted dashboard URL could carry: none is an option, none may run as SQL.
CRAFTED = ("x\\", "') OR 1=1 --", "\\' OR 1=1) --", "%27%29%20OR%201%3D1", "zz", "{}")
PER_SERVICE = 3


@pytest.fixture(scope="module")
def hostile(embedded_store: EmbeddedStore) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    fixed = {"operation": "chat", "provider": "p", "model": "m", "request_model": "m"}
    fixed |= {"response_model": "m", "prompt_name": "prompt", "prompt_version": "v1"}
    calls = [
        {"timestamp": now - timedelta(minutes=5 + i), "span_id": f"hostile-{n}-{i}"}
        | {"service_name": name, "duration_ms": 1.0, **fixed}
        for n, name in enumerate(HOSTILE)
        for i in range(PER_SERVICE)
    ]
    names = list(calls[0])
    embedded_store.insert("llm_calls", [[c[k] for c in calls] for k in names], names)
    return now


def _calls_panel() -> str:
    [panel] = [p for p in panel_queries() if p.dashboard == "llm-monitoring" and p.title == "Calls"]
    return panel.sql


def _count(store: EmbeddedStore, request: QueryRequest) -> int:
    [[calls]] = store.query(interpolate(_calls_panel(), request))[1]
    return int(calls or 0)


def test_every_stored_value_is_an_option_and_filters_exactly(
    embedded_store: EmbeddedStore, hostile: datetime
) -> None:
    start, end = hostile - timedelta(hours=1), hostile + timedelta(minutes=1)
    for name in HOSTILE:
        request = resolve_variables(embedded_store, "llm-monitoring", start, end, {"service": name})
        assert _count(embedded_store, request) == PER_SERVICE, name
    together = resolve_variables(
        embedded_store, "llm-monitoring", start, end, {"service": list(HOSTILE)}
    )
    assert _count(embedded_store, together) == PER_SERVICE * len(HOSTILE)


@pytest.mark.parametrize("value", CRAFTED)
def test_a_crafted_value_matches_nothing_and_runs_no_sql(
    embedded_store: EmbeddedStore, hostile: datetime, value: str
) -> None:
    start, end = hostile - timedelta(hours=1), hostile + timedelta(minutes=1)
    request = resolve_variables(embedded_store, "llm-monitoring", start, end)
    for selection in (Selection.of(value), Selection.of(value, "x\\")):
        request.variables["service"] = selection
        assert _count(embedded_store, request) == 0


def test_grafanas_quoting_format_would_break_on_a_backslash(
    embedded_store: EmbeddedStore, hostile: datetime
) -> None:
    """Why the values are encoded: `${var:singlequote}` escapes quotes, not backslashes."""
    condition = f"service_name IN (${{{SERVICE.name}:singlequote}})"
    request = QueryRequest(hostile - timedelta(hours=1), hostile)
    request.variables["service"] = Selection.of("ends-with-backslash\\")
    with pytest.raises(StoreError):
        embedded_store.query(
            interpolate(f"SELECT count() FROM assay.llm_calls WHERE {condition}", request)
        )
    # The same value through the dashboards' own filter (hex-valued, as its option is).
    request.variables["service"] = Selection.of(b"ends-with-backslash\\".hex().upper())
    sql = interpolate(f"SELECT count() FROM assay.llm_calls WHERE {any_of(SERVICE)}", request)
    assert embedded_store.query(sql)[1] == [(PER_SERVICE,)]
