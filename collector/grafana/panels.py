"""Panel builders for the ClickHouse data source: one function per visualization Assay uses.

Every panel has a description and a unit (tables: one per numeric column); a panel tied to a
budget shows it: a stat turns orange at half the budget and red at the budget, a graph draws
the budget as a dashed line.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, StackingConfig
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DynamicConfigValue,
    Panel,
    Threshold,
    ThresholdsMode,
)

from assay.collector.grafana.budgets import Budget
from assay.collector.grafana.query import DATASOURCE, ClickHouseTarget, Format

# Panels on the per-minute rollups never ask for finer buckets than the rollup has.
ROLLUP_INTERVAL = "1m"
GOOD, WARNING, BAD = "green", "orange", "red"


def budget_steps(budget: Budget | None) -> ThresholdsConfig:
    """Green, orange from half the budget, red from the budget (green only without one)."""
    steps = [Threshold(value=None, color=GOOD)]
    if budget is not None:
        if budget.value > 0:
            steps.append(Threshold(value=budget.value / 2, color=WARNING))
        steps.append(Threshold(value=budget.value, color=BAD))
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def any_is_bad(color: str = BAD) -> ThresholdsConfig:
    """For counts that should be 0: green at 0, `color` from 1."""
    steps = [Threshold(value=None, color=GOOD), Threshold(value=1, color=color)]
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def at_least_one() -> ThresholdsConfig:
    """For counts that should never be 0: red at 0, green from 1."""
    steps = [Threshold(value=None, color=BAD), Threshold(value=1, color=GOOD)]
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def time_series(
    title: str,
    sql: str,
    unit: str,
    description: str,
    width: int = 12,
    bars: bool = False,
    min_interval: str = ROLLUP_INTERVAL,
    budget: Budget | None = None,
    field_units: dict[str, str] | None = None,
) -> cogbuilder.Builder[Panel]:
    """A graph in `unit`; `field_units` gives some series another unit (a share beside
    counts), `budget` draws a dashed line."""
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
    for field, field_unit in (field_units or {}).items():
        panel = panel.override_by_name(field, [DynamicConfigValue(id_val="unit", value=field_unit)])
    if budget is not None:
        steps = [Threshold(value=None, color="transparent"), Threshold(budget.value, BAD)]
        panel = panel.thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        panel = panel.thresholds_style(
            GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def stat_value(
    title: str,
    sql: str,
    unit: str,
    description: str,
    thresholds: ThresholdsConfig | None = None,
    width: int = 3,
) -> cogbuilder.Builder[Panel]:
    """One number; `thresholds` colour it (see `budget_steps`, `any_is_bad`), else it stays
    neutral blue: a colour only where it means something."""
    panel = (
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
    if thresholds is None:
        neutral = [Threshold(value=None, color="blue")]
        thresholds = ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(neutral)
        return panel.thresholds(thresholds).color_mode(common.BigValueColorMode.NONE)
    return panel.thresholds(thresholds).color_mode(common.BigValueColorMode.BACKGROUND)


def table_of(
    title: str,
    sql: str,
    description: str,
    units: dict[str, str],
    width: int = 12,
    links: dict[str, tuple[str, str]] | None = None,
) -> cogbuilder.Builder[Panel]:
    """A table; `units` maps each numeric column to its unit, `links` a column to (link title,
    URL) shown on each of its cells."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseTarget(sql, Format.TABLE))
        .height(9)
        .span(width)
    )
    for column, unit in units.items():
        panel = panel.override_by_name(column, [DynamicConfigValue(id_val="unit", value=unit)])
    for column, (link_title, url) in (links or {}).items():
        link = {"title": link_title, "url": url, "targetBlank": True}
        panel = panel.override_by_name(column, [DynamicConfigValue(id_val="links", value=[link])])
    return panel
