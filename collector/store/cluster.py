"""The schema for a ClickHouse cluster, rendered from the single-node migrations.

Every statement of every migration is turned into its cluster form, on ClickHouse's own
distribution and nothing home-made:

- a table `T` becomes `T_local`, created `ON CLUSTER` with the `Replicated` variant of its engine
  (`/clickhouse/tables/{shard}/<db>/T_local`, `{replica}`: the servers' macros), plus a
  `Distributed` table under the name `T` that queries use, so dashboards, the API and the UI do
  not change. Rows are sharded by trace id, so a trace (its spans, its LLM calls, its scores)
  stays on one shard and per-trace queries and ReplacingMergeTree deduplication work locally;
- a materialized view reads the local source table and writes the local target table (each
  shard aggregates its own inserts); a plain view reads the Distributed tables and joins the
  local ones (co-sharded, so each shard joins its own rows);
- `ALTER TABLE` changing columns runs on both the local and the Distributed table; one changing
  storage (TTL, settings) or rows (UPDATE) on the local table only; `DROP VIEW` on every node;
  `MODIFY QUERY` of a materialized view reads the local tables, as its CREATE does; one setting
  the non-replicated deduplication window is left out (Replicated tables deduplicate by default);
- `INSERT INTO T ... SELECT` (a migration filling a table from another) runs once, as written:
  it reads the Distributed tables and writes through `T`'s, which sends each row to its shard.

The migration runner applies the rendered statements when the collector is started with
`--cluster NAME`; `assay schema --cluster NAME` prints them.
"""

from __future__ import annotations

import re

LOCAL_SUFFIX = "_local"
# How each table's rows are spread over the shards. Everything about one trace stays together;
# tables without a trace are spread by what they are looked up by.
SHARD_KEYS = {
    "otel_traces": "cityHash64(TraceId)",
    "otel_traces_trace_id_ts": "cityHash64(TraceId)",
    "otel_logs": "cityHash64(TraceId)",
    "llm_calls": "cityHash64(trace_id)",
    "scores": "cityHash64(trace_id)",
    "datasets": "cityHash64(name)",
    "dataset_items": "cityHash64(dataset_name)",
    "experiments": "cityHash64(name)",
    "experiment_items": "cityHash64(experiment_id)",
    "llm_call_messages": "cityHash64(trace_id)",
    "trace_spans": "cityHash64(trace_id)",
    "tool_calls": "cityHash64(trace_id)",
    # Filled on each shard by its view from its own spans (a trace's spans are on one shard).
    "trace_summaries": "cityHash64(trace_id)",
    "completed_runs": "cityHash64(trace_id)",
    # Rollups are filled on each shard by materialized views from its own calls: nothing is
    # inserted through their Distributed tables, and queries merge the shards' partial states.
    "llm_calls_1m": "rand()",
    "llm_calls_1h": "rand()",
    "llm_users_1d": "rand()",
    "llm_sessions_1d": "rand()",
    "llm_errors": "cityHash64(trace_id)",
    "call_scores": "cityHash64(trace_id)",
    # A metric series (service, name, attributes) stays on one shard.
    "otel_metrics_sum": "cityHash64(ServiceName, MetricName, Attributes)",
    "otel_metrics_gauge": "cityHash64(ServiceName, MetricName, Attributes)",
    "otel_metrics_histogram": "cityHash64(ServiceName, MetricName, Attributes)",
    "collector_stats": "cityHash64(instance)",
    "price_tables": "cityHash64(version)",
    "ui_sessions": "cityHash64(session_hash)",
    # One row, of the whole store (collector/older_spans.py).
    "older_spans": "0",
}
# Settings that only exist for non-replicated tables (replicated ones deduplicate by default).
_NON_REPLICATED_SETTINGS = re.compile(r",?\s*non_replicated_deduplication_window\s*=\s*\d+")
_CREATE_TABLE = re.compile(r"^CREATE TABLE (IF NOT EXISTS )?(\w+)\.(\w+)\s*\(", re.S)
# `CREATE TABLE t AS other ENGINE = ...`: the columns of another table
_CREATE_TABLE_AS = re.compile(
    r"^CREATE TABLE (IF NOT EXISTS )?(\w+)\.(\w+)\s+AS\s+(\w+)\.(\w+)\s+", re.S
)
_CREATE_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW (IF NOT EXISTS )?(\w+)\.(\w+)\s+TO\s+(\w+)\.(\w+)\s+AS\s", re.S
)
_CREATE_PLAIN_VIEW = re.compile(r"^CREATE VIEW (IF NOT EXISTS )?(\w+)\.(\w+)\s+AS\s", re.S)
_ALTER = re.compile(r"^ALTER TABLE (\w+)\.(\w+)\s+(.*)$", re.S)
# Dropping a view (to create it again with other columns); tables are never dropped.
_DROP_VIEW = re.compile(r"^DROP VIEW (IF EXISTS )?(\w+)\.(\w+)$")
_INSERT_SELECT = re.compile(r"^INSERT INTO (\w+)\.(\w+)\s*(\([^)]*\))?\s*SELECT\b", re.S)
_COLUMN_ACTIONS = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b", re.I)
_MODIFY_QUERY = re.compile(r"^\s*MODIFY QUERY\b", re.I)
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w*MergeTree)\b")


class ClusterSchemaError(ValueError):
    """A migration statement the cluster renderer does not know how to distribute."""


def _balanced_end(text: str, start: int) -> int:
    """Index just past the parenthesis closing the one at `start`."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ClusterSchemaError(f"unbalanced parentheses in: {text[:80]}...")


def _replicated_engine(statement: str, database: str, local: str) -> str:
    match = _ENGINE.search(statement)
    if match is None:
        raise ClusterSchemaError(f"{local}: only MergeTree-family tables can be distributed")
    path = f"'/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}'"
    engine, after = match.group(1), match.end()
    if after < len(statement) and statement[after] == "(":
        end = _balanced_end(statement, after)
        arguments = statement[after + 1 : end - 1].strip()
        replaced = f"Replicated{engine}({path}{', ' + arguments if arguments else ''})"
    else:
        end = after
        replaced = f"Replicated{engine}({path})"
    rendered = statement[: match.start()] + f"ENGINE = {replaced}" + statement[end:]
    rendered = _NON_REPLICATED_SETTINGS.sub("", rendered)
    return re.sub(r"\s*SETTINGS\s*$", "", re.sub(r"SETTINGS\s*,\s*", "SETTINGS ", rendered))


def _local_sources(select: str, database: str, tables: set[str]) -> str:
    """`select` reading the local form of every distributed table it names."""
    for table in tables:
        select = re.sub(rf"\b{database}\.{table}\b", f"{database}.{table}{LOCAL_SUFFIX}", select)
    return select


def _clauses(action: str) -> list[str]:
    """The comma-separated clauses of an ALTER (`ADD COLUMN x UInt32, MODIFY ORDER BY (a, x)`),
    split only at commas outside parentheses and quotes."""
    clauses, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(action):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            clauses.append(action[start:index].strip())
            start = index + 1
    clauses.append(action[start:].strip())
    return [clause for clause in clauses if clause]


def render_statement(statement: str, cluster: str, tables: set[str]) -> list[str]:
    """The cluster form of one single-node statement. `tables` collects the names of the
    tables seen so far (views and ALTERs refer to them)."""
    on = f"ON CLUSTER {cluster}"
    statement = statement.strip()
    if match := _CREATE_TABLE.match(statement):
        exists, database, name = match.group(1) or "", match.group(2), match.group(3)
        if name not in SHARD_KEYS:
            raise ClusterSchemaError(f"table {name} has no shard key in SHARD_KEYS")
        local = name + LOCAL_SUFFIX
        head = f"CREATE TABLE {exists}{database}.{local} {on} ("
        body = _replicated_engine(statement[match.end() :], database, local)
        tables.add(name)
        return [
            head + body,
            f"CREATE TABLE {exists}{database}.{name} {on} AS {database}.{local} "
            f"ENGINE = Distributed({cluster}, {database}, {local}, {SHARD_KEYS[name]})",
        ]
    if match := _CREATE_TABLE_AS.match(statement):
        exists, database, name, _, source = match.groups()
        if name not in SHARD_KEYS:
            raise ClusterSchemaError(f"table {name} has no shard key in SHARD_KEYS")
        local = name + LOCAL_SUFFIX
        source = source + LOCAL_SUFFIX if source in tables else source
        body = _replicated_engine(statement[match.end() :], database, local)
        tables.add(name)
        return [
            f"CREATE TABLE {exists}{database}.{local} {on} AS {database}.{source} {body}",
            f"CREATE TABLE {exists}{database}.{name} {on} AS {database}.{local} "
            f"ENGINE = Distributed({cluster}, {database}, {local}, {SHARD_KEYS[name]})",
        ]
    if match := _CREATE_VIEW.match(statement):
        exists, database, name = match.group(1) or "", match.group(2), match.group(3)
        target = match.group(5)
        select = _local_sources(statement[match.end() :], database, tables)
        target = target + LOCAL_SUFFIX if target in tables else target
        return [
            f"CREATE MATERIALIZED VIEW {exists}{database}.{name} {on} "
            f"TO {database}.{target} AS {select}"
        ]
    if match := _CREATE_PLAIN_VIEW.match(statement):
        exists, database, name = match.groups()
        select = statement[match.end() :]
        # The view reads the Distributed tables; what it joins is read on each shard, next to
        # the rows it joins (the tables are sharded alike, by trace id). A Distributed table on
        # the right of a JOIN would be a "double-distributed" join, which ClickHouse refuses.
        joined = select.find("JOIN")
        if joined >= 0:
            head, tail = select[:joined], select[joined:]
            for table in tables:
                tail = re.sub(
                    rf"\b{database}\.{table}\b", f"{database}.{table}{LOCAL_SUFFIX}", tail
                )
            select = head + tail
        return [f"CREATE VIEW {exists}{database}.{name} {on} AS {select}"]
    if match := _ALTER.match(statement):
        database, name, action = match.groups()
        if _NON_REPLICATED_SETTINGS.fullmatch(re.sub(r"^MODIFY SETTING\s+", "", action.strip())):
            return []  # Replicated tables deduplicate by default
        if name not in tables:
            if _MODIFY_QUERY.match(action):  # a materialized view: it reads its shard's rows
                action = _local_sources(action, database, tables)
            return [f"ALTER TABLE {database}.{name} {on} {action}"]
        local = f"ALTER TABLE {database}.{name}{LOCAL_SUFFIX} {on} {action}"
        # The Distributed table takes the column changes only (a key change is storage).
        columns = [c for c in _clauses(action) if _COLUMN_ACTIONS.match(c)]
        if columns:
            return [local, f"ALTER TABLE {database}.{name} {on} {', '.join(columns)}"]
        return [local]
    if match := _DROP_VIEW.match(statement):
        exists, database, name = match.groups()
        return [f"DROP VIEW {exists or ''}{database}.{name} {on}"]
    if match := _INSERT_SELECT.match(statement):
        if match.group(2) not in tables:
            raise ClusterSchemaError(f"insert into {match.group(2)}: not a distributed table")
        return [statement]
    raise ClusterSchemaError(f"cannot render for a cluster: {statement[:80]}...")


def render_migration(statements: tuple[str, ...], cluster: str, tables: set[str]) -> list[str]:
    return [out for statement in statements for out in render_statement(statement, cluster, tables)]


def cluster_preamble(database: str, cluster: str) -> list[str]:
    """The database, and the migration log every node shares (no {shard}: one for all)."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations ON CLUSTER {cluster} "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/schema_migrations',"
        " '{replica}') ORDER BY version",
    ]
