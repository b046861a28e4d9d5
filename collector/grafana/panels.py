"""Panel builders for the ClickHouse data source: one function per visualization Assay uses."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue, Panel

from assay.collector.grafana.query import DATASOURCE, ClickHouseTarget, Format

# Panels on the per-minute rollups never ask for finer buckets than the rollup has.
ROLLUP_INTERVAL = "1m"


def time_series(
    title: str,
    sql: str,
    unit: str,
    description: str,
    width: int = 12,
    bars: bool = False,
    min_interval: str = ROLLUP_INTERVAL,
) -> cogbuilder.Builder[Panel]:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseTarget(sql, Format.TIME_SERIES))
        .interval(min_interval)
        .unit(unit)
        .height(8)
        .span(width)
        .line_width(1)
        .fill_opacity(10)
    )
    if bars:
        panel = (
            panel.draw_style(common.GraphDrawStyle.BARS)
            .fill_opacity(80)
            .stacking(StackingConfig().mode(common.StackingMode.NORMAL))
        )
    return panel


def stat_value(
    title: str, sql: str, unit: str, description: str, width: int = 4
) -> cogbuilder.Builder[Panel]:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseTarget(sql, Format.TABLE))
        .unit(unit)
        .height(4)
        .span(width)
        .graph_mode(common.BigValueGraphMode.NONE)
    )


def table_of(
    title: str,
    sql: str,
    description: str,
    width: int = 12,
    links: dict[str, tuple[str, str]] | None = None,
) -> cogbuilder.Builder[Panel]:
    """A table; `links` maps a column to (link title, URL) shown on each of its cells."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseTarget(sql, Format.TABLE))
        .height(9)
        .span(width)
    )
    for column, (link_title, url) in (links or {}).items():
        link = {"title": link_title, "url": url, "targetBlank": True}
        panel = panel.override_by_name(column, [DynamicConfigValue(id_val="links", value=[link])])
    return panel
