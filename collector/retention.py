"""Retention: how long each kind of data is kept, as ClickHouse TTLs.

`retention:` in the `collector:` section of assay.yaml names a period per kind of data:

    collector:
      retention: {traces: 30d, logs: 14d, llm_calls: 90d, content: 14d, scores: 365d}

`content` is the prompt and response text of `llm_calls` and the arguments and results of
`tool_calls` (column TTLs: the columns are emptied, the row with its tokens, cost and latency
stays), so it may expire sooner than the calls. `traces` covers the spans and the agent-run
tables derived from them. At
start-up, after the migrations, each configured TTL is compared with the one the table has and
set with `ALTER TABLE ... MODIFY TTL` (or `MODIFY COLUMN ... TTL`) only when it differs: running
twice changes nothing, and a TTL set by hand on a kind that is not configured is left alone.
`off` removes Assay's TTL. ClickHouse drops expired rows in merges, in the background; rows stored
before a TTL was set are expired by a background mutation, so a start never waits for them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pydantic import ConfigDict, Field, RootModel, field_validator

from assay.collector.store.base import Store
from assay.collector.store.cluster import LOCAL_SUFFIX

log = logging.getLogger("assay.collector.retention")

_PERIOD = re.compile(r"^(\d+)\s*([hdw])$")
_UNITS = {"h": ("Hour", 1), "d": ("Day", 1), "w": ("Day", 7)}
OFF = "off"
_NO_REWRITE = "SETTINGS materialize_ttl_after_modify = 0"
_IN_BACKGROUND = "SETTINGS mutations_sync = 0"


@dataclass(frozen=True)
class Target:
    """The tables (with their time column) a kind of data lives in; with `columns`, only those
    columns expire (column TTLs), not the rows."""

    tables: tuple[tuple[str, str], ...]
    columns: tuple[str, ...] = ()


TARGETS: dict[str, tuple[Target, ...]] = {
    # The spans, and what the collector derives from them: agent runs' steps, tool calls and
    # summaries (migrations 011, 015), which would otherwise outlive them.
    "traces": (
        Target(
            (
                ("otel_traces", "Timestamp"),
                ("otel_traces_trace_id_ts", "Start"),
                ("trace_spans", "start"),
                ("tool_calls", "timestamp"),
                ("trace_summaries", "hour"),
                ("completed_runs", "hour"),
            )
        ),
    ),
    "logs": (Target((("otel_logs", "Timestamp"),)),),
    "metrics": (
        Target(
            (
                ("otel_metrics_sum", "TimeUnix"),
                ("otel_metrics_gauge", "TimeUnix"),
                ("otel_metrics_histogram", "TimeUnix"),
            )
        ),
    ),
    "llm_calls": (Target((("llm_calls", "timestamp"),)),),
    "content": (
        Target(
            (("llm_calls", "timestamp"),),
            ("input_messages", "output_messages", "system_instructions", "tool_definitions"),
        ),
        Target((("llm_call_messages", "timestamp"),)),  # messages that came as log records
        Target((("tool_calls", "timestamp"),), ("arguments", "result")),  # what tools were told
    ),
    "scores": (Target((("scores", "timestamp"),)),),
    # The dashboards' rollups (migration 003): per-minute ones for recent ranges, and the
    # hourly and daily ones, which should outlive the calls they summarize.
    "minute_rollups": (Target((("llm_calls_1m", "minute"), ("llm_errors", "timestamp"))),),
    "rollups": (
        Target(
            (
                ("llm_calls_1h", "minute"),
                ("llm_users_1d", "day"),
                ("llm_sessions_1d", "day"),
                ("call_scores", "timestamp"),
            )
        ),
    ),
    "collector_stats": (Target((("collector_stats", "timestamp"),)),),
}


def _period(period: str) -> tuple[str, int] | None:
    """`30d` → ("Day", 30), `8w` → ("Day", 56), `12h` → ("Hour", 12); `off` → None."""
    text = str(period).strip().lower()
    if text == OFF:
        return None
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(f"retention period {period!r}: write e.g. 12h, 30d, 8w or {OFF!r}")
    unit, factor = _UNITS[match.group(2)]
    amount = int(match.group(1)) * factor
    if amount <= 0:
        raise ValueError(f"retention period {period!r} must be positive")
    return unit, amount


def ttl_expression(time_column: str, period: str) -> str:
    """`30d` → `toDateTime(timestamp) + toIntervalDay(30)`, spelled as ClickHouse prints it
    back in the table's DDL (so the current TTL can be compared by text)."""
    parsed = _period(period)
    if parsed is None:
        raise ValueError(f"retention period {period!r} has no TTL expression")
    unit, amount = parsed
    return f"toDateTime({time_column}) + toInterval{unit}({amount})"


def check_retention(retention: dict[str, str]) -> dict[str, str]:
    """Known kinds and valid periods; raises ValueError saying what is wrong."""
    unknown = sorted(set(retention) - set(TARGETS))
    if unknown:
        raise ValueError(f"retention: unknown kind(s) {unknown}; choose from {sorted(TARGETS)}")
    checked = {kind: str(period) for kind, period in retention.items()}
    hours = {kind: _hours(period) for kind, period in checked.items()}  # checks every period
    rollups, calls = hours.get("rollups"), hours.get("llm_calls")
    if rollups is not None and calls is not None and rollups < calls:
        raise ValueError(
            f"retention: rollups ({checked['rollups']}) must outlive the calls they summarize "
            f"(llm_calls {checked['llm_calls']})"
        )
    return checked


class RetentionConfig(RootModel[dict[str, str]]):
    """Retention's own settings: kind of data → period (`retention:` in the collector section
    of assay.yaml, `ASSAY_RETENTION` as JSON), checked when built (`check_retention`)."""

    model_config = ConfigDict(frozen=True)

    root: dict[str, str] = Field(default_factory=dict)

    @field_validator("root")
    @classmethod
    def _checked(cls, value: dict[str, str]) -> dict[str, str]:
        return check_retention(value)

    @property
    def periods(self) -> dict[str, str]:
        return dict(self.root)


def _hours(period: str) -> float:
    """A period in hours; `off` (forever) is infinity."""
    parsed = _period(period)
    if parsed is None:
        return float("inf")
    unit, amount = parsed
    return amount * (24 if unit == "Day" else 1)


def _table_ttl(ddl: str) -> str | None:
    """The table-level TTL expression in a CREATE TABLE statement, if any."""
    engine = ddl.find(" ENGINE = ")
    match = re.search(r"\sTTL\s+(.+?)(?:\s+SETTINGS\s|$)", ddl[engine:] if engine >= 0 else "")
    return match.group(1).strip() if match else None


def _column_ttl(ddl: str, column: str) -> str | None:
    """The TTL expression of one column in a CREATE TABLE statement, if any."""
    start = ddl.find(f"`{column}` ")
    if start < 0:
        return None
    ends = [ddl.find(stop, start) for stop in (", `", ", INDEX ", ") ENGINE = ")]
    definition = ddl[start : min((e for e in ends if e >= 0), default=len(ddl))]
    match = re.search(r"\sTTL\s+(.+)$", definition)
    return match.group(1).strip() if match else None


def retention_statements(
    retention: RetentionConfig, database: str, ddl_of: dict[str, str], on_cluster: str = ""
) -> list[str]:
    """The ALTER statements that bring the tables to `retention`; `ddl_of` maps each table to
    its current CREATE statement. On a cluster, `on_cluster` is "_local ON CLUSTER name" (the
    local tables' DDL in `ddl_of` under the names the queries use)."""
    statements = []
    materialize: dict[str, None] = {}  # once per table, after every TTL of it is set
    for kind, period in retention.periods.items():
        off = _period(period) is None
        for target, (table, time_column) in (
            (t, table) for t in TARGETS[kind] for table in t.tables
        ):
            ddl = ddl_of.get(table)
            if ddl is None:
                continue  # not in this schema (yet)
            name = f"{database}.{table}{on_cluster}"
            wanted = None if off else ttl_expression(time_column, period)
            changed = []
            if target.columns:
                for column in target.columns:
                    if _column_ttl(ddl, column) != wanted:
                        action = "REMOVE TTL" if wanted is None else f"TTL {wanted}"
                        changed.append(f"ALTER TABLE {name} MODIFY COLUMN {column} {action}")
            elif _table_ttl(ddl) != wanted:
                action = "REMOVE TTL" if wanted is None else f"MODIFY TTL {wanted}"
                changed.append(f"ALTER TABLE {name} {action}")
            if changed and wanted is not None:
                # Setting a TTL rewrites every stored part before it returns (chDB waits for
                # mutations): minutes on a big store, before the collector could serve. It is
                # set for new parts at once, and the stored ones are expired by a mutation in
                # the background.
                changed = [f"{statement} {_NO_REWRITE}" for statement in changed]
                materialize[f"ALTER TABLE {name} MATERIALIZE TTL {_IN_BACKGROUND}"] = None
            statements += changed
    return statements + list(materialize)


def _tables_ddl(store: Store, cluster: str | None) -> dict[str, str]:
    """Each table's CREATE statement, by the name the queries use (on a cluster: the local
    table's, which holds the rows and their TTL)."""
    _, rows = store.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        {"db": store.database},
    )
    ddl_of = dict(rows)
    if cluster:
        suffix = LOCAL_SUFFIX
        ddl_of = {
            name[: -len(suffix)]: ddl for name, ddl in ddl_of.items() if name.endswith(suffix)
        }
    return ddl_of


def apply_retention(
    store: Store, retention: RetentionConfig, cluster: str | None = None
) -> list[str]:
    """Set the configured TTLs on the store's tables (on a cluster: on the local tables, which
    hold the rows, on every node); return the statements run."""
    if not retention.periods:
        return []
    ddl_of = _tables_ddl(store, cluster)
    on_cluster = f"{LOCAL_SUFFIX} ON CLUSTER {cluster}" if cluster else ""
    statements = retention_statements(retention, store.database, ddl_of, on_cluster)
    for statement in statements:
        store.command(statement)
        log.info("retention: %s", statement)
    return statements


# The tables whose TTL decides whether an OTLP record of each signal is kept: a span's row in
# `otel_traces` and, for an LLM call, in `llm_calls`; a log record's in `otel_logs`; a metric
# point's in the table of its kind.
SIGNAL_TABLES: dict[str, tuple[str, ...]] = {
    "traces": ("otel_traces", "llm_calls"),
    "logs": ("otel_logs",),
    "metrics": ("otel_metrics_sum", "otel_metrics_gauge", "otel_metrics_histogram"),
}
# A table TTL as ClickHouse prints it back; any other shape (several clauses, a TTL set by hand
# on another expression) sets no bound.
_PRINTED_TTL = re.compile(r"^toDateTime\(\w+\) \+ toInterval(\w+)\((\d+)\)$")
# Seconds per unit, the longest each can be: a bound never refuses what a table would keep.
_UNIT_SECONDS = {
    "Second": 1,
    "Minute": 60,
    "Hour": 3600,
    "Day": 86_400,
    "Week": 7 * 86_400,
    "Month": 31 * 86_400,
    "Quarter": 92 * 86_400,
    "Year": 366 * 86_400,
}


def _ttl_seconds(ddl: str | None) -> float:
    """How long a table keeps a row, from its CREATE statement; infinity without a TTL."""
    ttl = _table_ttl(ddl or "")
    if ttl is None:
        return float("inf")
    match = _PRINTED_TTL.match(ttl)
    if match is None or match.group(1) not in _UNIT_SECONDS:
        return float("inf")
    return int(match.group(2)) * _UNIT_SECONDS[match.group(1)]


def kept_seconds(store: Store, cluster: str | None = None) -> dict[str, dict[str, float]]:
    """How long the store keeps a record of each signal in each of its tables (infinity:
    forever), from the TTLs the tables have now: a row older than that is dropped as it is
    inserted, so the receivers refuse a record none of its tables would keep, instead of
    acknowledging it (receivers/validation.py)."""
    ddl_of = _tables_ddl(store, cluster)
    return {
        signal: {table: _ttl_seconds(ddl_of.get(table)) for table in tables}
        for signal, tables in SIGNAL_TABLES.items()
    }
