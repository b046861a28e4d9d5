"""The cluster schema: every migration rendered for a ClickHouse cluster parses in ClickHouse,
and exposes the same tables and columns, under the same names, as the single-node schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from assay.collector.store.cluster import (
    LOCAL_SUFFIX,
    SHARD_KEYS,
    ClusterSchemaError,
    render_statement,
)
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.migrations import load_migrations, preamble, rendered_migrations

CLUSTER = "assay_cluster"


def formatted(store: EmbeddedStore, statement: str) -> str:
    """ClickHouse's own normal form of a statement: it must parse."""
    _, rows = store.query("SELECT formatQuery({q:String})", {"q": statement})
    return str(rows[0][0])


def cluster_statements() -> list[str]:
    return [
        *preamble("assay", CLUSTER),
        *(s for m in rendered_migrations("assay", CLUSTER) for s in m.statements),
    ]


def columns_block(normal: str) -> str:
    """The column and index definitions of a formatted CREATE TABLE."""
    start = normal.index("(")
    depth = 0
    for index in range(start, len(normal)):
        depth += {"(": 1, ")": -1}.get(normal[index], 0)
        if depth == 0:
            return normal[start : index + 1]
    raise AssertionError(f"unbalanced: {normal}")


def created(normal: str) -> tuple[str, str]:
    """(kind, name) of a formatted CREATE statement."""
    match = re.match(
        r"CREATE (TABLE|MATERIALIZED VIEW|VIEW|DATABASE) (?:IF NOT EXISTS )?(\S+)", normal
    )
    assert match, normal
    return match.group(1), match.group(2)


def test_every_cluster_statement_parses(embedded_store: EmbeddedStore) -> None:
    statements = cluster_statements()
    assert len(statements) > 2 * len(SHARD_KEYS)
    for statement in statements:
        normal = formatted(embedded_store, statement)
        if normal.startswith("INSERT INTO "):
            # Rows of the whole store (migrations 017, 018), once, through a Distributed table.
            assert normal.split()[2].split(".")[1] in SHARD_KEYS, normal
            continue
        assert f"ON CLUSTER {CLUSTER}" in normal, normal


def test_the_cluster_schema_exposes_the_single_node_tables(
    embedded_store: EmbeddedStore,
) -> None:
    single = {
        created(n): n
        for n in (
            formatted(embedded_store, s) for m in load_migrations("assay") for s in m.statements
        )
        if n.startswith("CREATE")
    }
    cluster = {
        created(n): n
        for n in (formatted(embedded_store, s) for s in cluster_statements())
        if n.startswith("CREATE")
    }
    for (kind, name), normal in single.items():
        if kind.endswith("VIEW"):
            assert (kind, name) in cluster
            continue
        local = cluster[("TABLE", f"{name}{LOCAL_SUFFIX}")]
        distributed = cluster[("TABLE", name)]
        like = re.match(r"CREATE TABLE (?:IF NOT EXISTS )?\S+ AS (\S+)\s+ENGINE", normal)
        if like:  # the columns of another table: that table's local form on the shards
            source = rf"AS {like.group(1)}_local\s"
            assert re.match(rf"CREATE TABLE (?:IF NOT EXISTS )?\S+ ON CLUSTER \S+ {source}", local)
        else:  # same columns (types, codecs, defaults) and indexes on the shards as on one node
            assert columns_block(local) == columns_block(normal), name
        table = name.split(".")[1]
        engine = re.search(r"ENGINE = (\w+)", normal)
        assert engine and f"ENGINE = Replicated{engine.group(1)}(" in local
        assert "'/clickhouse/tables/{shard}/assay/" in local and "'{replica}'" in local
        assert f"AS {name}{LOCAL_SUFFIX}" in distributed
        assert f"Distributed({CLUSTER}, assay, {table}{LOCAL_SUFFIX}" in distributed
        assert SHARD_KEYS[table] in distributed


def test_the_single_node_schema_has_the_columns_the_cluster_local_tables_have(
    embedded_store: EmbeddedStore,
) -> None:
    """The single-node tables, as created and altered, against the cluster DDL of their local
    tables (CREATE and the ALTERs that add columns later)."""
    ddl: dict[str, str] = {}
    for statement in cluster_statements():
        normal = formatted(embedded_store, statement)
        target = re.match(
            r"(?:CREATE TABLE (?:IF NOT EXISTS )?|ALTER TABLE )assay\.(\w+)_local", normal
        )
        if target:
            # `CREATE TABLE t_local AS s_local`: t has the columns s has.
            like = re.match(r"CREATE TABLE [^(]*? AS assay\.(\w+)_local\s+ENGINE", normal)
            source = ddl.get(like.group(1), "") if like else ""
            ddl[target.group(1)] = ddl.get(target.group(1), "") + "\n" + normal + source
    _, tables = embedded_store.query(
        "SELECT name FROM system.tables WHERE database = 'assay' AND engine LIKE '%MergeTree'"
        " AND name != 'schema_migrations'"
    )
    assert {t for (t,) in tables} == set(ddl)
    for (table,) in tables:
        _, rows = embedded_store.query(
            "SELECT name FROM system.columns WHERE database = 'assay' AND table = {t:String}",
            {"t": table},
        )
        for (column,) in rows:
            assert re.search(rf"\b{re.escape(column.split('.')[0])}\b", ddl[table]), (table, column)


def test_trace_data_is_sharded_by_trace_id() -> None:
    for table in ("otel_traces", "otel_logs", "llm_calls", "scores"):
        assert "trace" in SHARD_KEYS[table].lower(), table


def test_views_read_and_write_the_local_tables() -> None:
    tables: set[str] = set()
    for migration in load_migrations("assay"):
        for statement in migration.statements:
            for out in render_statement(statement, CLUSTER, tables):
                if out.startswith("CREATE MATERIALIZED VIEW"):
                    assert re.search(r"TO assay\.\w+_local AS", out), out
                    assert re.search(r"FROM assay\.\w+_local\b", out), out
                elif out.startswith("CREATE VIEW") and "JOIN" in out:
                    head, joined = out.split("JOIN", 1)
                    # The view reads the Distributed tables and joins shard-locally.
                    assert not re.search(r"FROM assay\.\w+_local\b", head), out
                    assert re.search(r"assay\.\w+_local\b", joined), out


def test_alters_reach_the_right_tables() -> None:
    tables = {"llm_calls"}
    add = render_statement("ALTER TABLE assay.llm_calls ADD COLUMN x String", CLUSTER, tables)
    assert add == [
        f"ALTER TABLE assay.llm_calls_local ON CLUSTER {CLUSTER} ADD COLUMN x String",
        f"ALTER TABLE assay.llm_calls ON CLUSTER {CLUSTER} ADD COLUMN x String",
    ]
    ttl = render_statement(
        "ALTER TABLE assay.llm_calls MODIFY TTL toDateTime(timestamp) + toIntervalDay(3)",
        CLUSTER,
        tables,
    )
    assert ttl == [
        f"ALTER TABLE assay.llm_calls_local ON CLUSTER {CLUSTER} "
        "MODIFY TTL toDateTime(timestamp) + toIntervalDay(3)"
    ]
    # A MergeTree setting (how parts merge) is the local table's; a Distributed table has none.
    setting = render_statement(
        "ALTER TABLE assay.llm_calls MODIFY SETTING merge_max_block_size = 1024",
        CLUSTER,
        tables,
    )
    assert setting == [
        f"ALTER TABLE assay.llm_calls_local ON CLUSTER {CLUSTER} "
        "MODIFY SETTING merge_max_block_size = 1024"
    ]


def test_an_alter_of_columns_and_storage_gives_the_distributed_table_the_columns_alone() -> None:
    tables = {"llm_calls_1m"}
    rendered = render_statement(
        "ALTER TABLE assay.llm_calls_1m ADD COLUMN IF NOT EXISTS x Bool DEFAULT f(a, ','),\n"
        "    MODIFY ORDER BY (minute, x)",
        CLUSTER,
        tables,
    )
    assert rendered == [
        f"ALTER TABLE assay.llm_calls_1m_local ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x "
        "Bool DEFAULT f(a, ','),\n    MODIFY ORDER BY (minute, x)",
        f"ALTER TABLE assay.llm_calls_1m ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x Bool "
        "DEFAULT f(a, ',')",
    ]


def test_a_changed_view_query_reads_the_local_tables() -> None:
    tables: set[str] = set()
    for migration in load_migrations("assay"):
        for statement in migration.statements:
            for out in render_statement(statement, CLUSTER, tables):
                if "MODIFY QUERY" in out:
                    assert re.search(r"FROM assay\.\w+_local\b", out), out
                    assert not re.search(r"(FROM|JOIN) assay\.(?!\w+_local\b)\w+", out), out


def test_an_insert_from_a_select_goes_through_the_distributed_tables() -> None:
    """Run once, on any node: the Distributed tables read every shard and send each row written
    to its own shard, so a rebuild from the spans (migration 017) lands beside the trace's rows."""
    insert = "INSERT INTO assay.trace_summaries (trace_id) SELECT trace_id FROM assay.trace_spans"
    assert render_statement(insert, CLUSTER, {"trace_summaries", "trace_spans"}) == [insert]
    with pytest.raises(ClusterSchemaError, match="not a distributed table"):
        render_statement(insert, CLUSTER, {"trace_spans"})


def test_a_table_without_a_shard_key_is_refused() -> None:
    with pytest.raises(ClusterSchemaError, match="no shard key"):
        render_statement(
            "CREATE TABLE IF NOT EXISTS assay.mystery (x UInt8) ENGINE = MergeTree ORDER BY x",
            CLUSTER,
            set(),
        )
    with pytest.raises(ClusterSchemaError, match="cannot render"):
        render_statement("DROP TABLE assay.llm_calls", CLUSTER, set())


def assay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.collector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.subprocess
def test_assay_schema_prints_both_forms() -> None:
    single = assay("schema")
    assert single.returncode == 0, single.stderr
    assert "CREATE TABLE IF NOT EXISTS assay.llm_calls\n" in single.stdout
    assert "ON CLUSTER" not in single.stdout
    clustered = assay("schema", "--cluster", "prod", "--database", "obs")
    assert clustered.returncode == 0, clustered.stderr
    assert "CREATE TABLE IF NOT EXISTS obs.llm_calls_local ON CLUSTER prod" in clustered.stdout
    assert "ENGINE = Distributed(prod, obs, llm_calls_local, cityHash64(trace_id))" in (
        clustered.stdout
    )


@pytest.mark.subprocess
def test_workers_and_cluster_need_a_server(tmp_path: Path) -> None:
    workers = assay("collector", "--storage", str(tmp_path / "d"), "--workers", "2")
    assert workers.returncode == 2
    assert "--workers needs a ClickHouse server" in workers.stderr
    cluster = assay("collector", "--storage", str(tmp_path / "d"), "--cluster", "prod")
    assert cluster.returncode == 1
    assert "--cluster needs a ClickHouse server" in cluster.stderr
    assert not (tmp_path / "d").exists()
