"""Numbered schema migrations (`NNN_name.sql`), applied in order at start-up, once each."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from assay.collector.store.cluster import cluster_preamble, render_migration

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("assay.collector.store")

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class SchemaTooNew(RuntimeError):
    """The store holds migrations this version of Assay does not have: a newer Assay wrote it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> list[str]:
    """Statements of a migration file: `;` ends a statement; `--` comment lines are dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations(database: str) -> list[Migration]:
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8").replace("{database}", database)
            found.append(Migration(int(match.group(1)), entry.name, tuple(split_statements(text))))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {[m.name for m in found]}")
    return found


def preamble(database: str, cluster: str | None = None) -> list[str]:
    """The database and the log of applied migrations."""
    if cluster:
        return cluster_preamble(database, cluster)
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version",
    ]


def rendered_migrations(database: str, cluster: str | None = None) -> list[Migration]:
    """The migrations as they are run: as written, or rendered for a cluster."""
    migrations = load_migrations(database)
    if not cluster:
        return migrations
    tables: set[str] = set()
    return [
        Migration(m.version, m.name, tuple(render_migration(m.statements, cluster, tables)))
        for m in migrations
    ]


def schema_script(database: str, cluster: str | None = None) -> str:
    """Every statement of the schema, as one SQL script (`assay schema`)."""
    parts = [f"{statement};" for statement in preamble(database, cluster)]
    for migration in rendered_migrations(database, cluster):
        parts.append(f"\n-- {migration.name}")
        parts.extend(f"{statement};" for statement in migration.statements)
    return "\n".join(parts) + "\n"


def apply_migrations(client: Client, database: str, cluster: str | None = None) -> list[str]:
    """Bring `database` up to the newest schema; return the names of the migrations applied."""
    for statement in preamble(database, cluster):
        client.command(statement)
    done = {
        int(version): str(name)
        for version, name in client.query(
            f"SELECT version, name FROM {database}.schema_migrations"
        ).result_rows
    }
    migrations = rendered_migrations(database, cluster)
    _refuse_newer(done, migrations, database)
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        # Statements are idempotent (IF NOT EXISTS), so a migration cut short re-runs safely.
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


def _refuse_newer(done: dict[int, str], migrations: list[Migration], database: str) -> None:
    """A store a newer Assay migrated is refused, not used: this version's code would write and
    read its tables as the schema it knows (rows missing what the newer code relies on, views
    it does not know fed unseen) and say nothing; the newer version, started again, finds the
    store as it left it."""
    known = {m.version for m in migrations}
    unknown = sorted(version for version in done if version not in known)
    if unknown:
        names = ", ".join(done[version] for version in unknown)
        raise SchemaTooNew(
            f"database {database} was migrated by a newer Assay ({names}; this version knows "
            f"migrations up to {migrations[-1].name}): run that version or a later one on it, "
            "or give this one another storage"
        )


# The name a materialized view has for a moment while `reload_views` renames it and back.
RELOADING_SUFFIX = "__reloading"


def reload_views(client: Client, database: str, cluster: str | None = None) -> None:
    """Rename every materialized view of `database` and back, so the engine holds each as every
    later start loads it (from its stored definition). A view altered in the running engine
    (`ALTER ... MODIFY QUERY`, migration 012) derives its target's deduplication tokens from an
    insert's otherwise than the same view loaded at a start (measured on chDB 26.9): a segment
    stored after such a migration and replayed after a restart of the engine was counted twice
    by every rollup. On the embedded store that restart is the collector's (a crash); a server
    is the same engine, whose restart (by itself, or with the collector's host) comes between
    (not measured here: tests/reliability/test_replay_rollups.py does where Docker runs). A
    rename makes the engine take the view up afresh without ever detaching it: an insert
    meanwhile passes through the view (DETACH and ATTACH would let it pass the view by, and the
    rollups miss it, on a server where other collectors write), and through one view only
    (CREATE OR REPLACE would run both for a moment). On a cluster, every node's views, through
    ON CLUSTER."""
    for name in _views(client, database):
        if not name.endswith(RELOADING_SUFFIX):
            passing = name + RELOADING_SUFFIX
            if _rename(client, database, name, passing, cluster):
                _rename(client, database, passing, name, cluster)


def restore_views(client: Client, database: str, cluster: str | None = None) -> None:
    """Give its name back to a view left renamed in the middle of `reload_views` (by a crash,
    or a failed rename)."""
    for name in _views(client, database):
        if name.endswith(RELOADING_SUFFIX):
            original = name.removesuffix(RELOADING_SUFFIX)
            if _rename(client, database, name, original, cluster):
                log.warning("view %s was left renamed %s: renamed back", original, name)


def _rename(client: Client, database: str, old: str, new: str, cluster: str | None) -> bool:
    """Rename a view; False, and a warning, when that fails (another collector starting at the
    same moment may be renaming it): the view works under either name, and the next start
    gives it its own back (`restore_views`), so the start goes on."""
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    try:
        client.command(f"RENAME TABLE {database}.`{old}` TO {database}.`{new}`{on_cluster}")
    except Exception as exc:
        log.warning("could not rename view %s to %s: %s", old, new, exc)
        return False
    return True


def _views(client: Client, database: str) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine = 'MaterializedView' ORDER BY name",
        parameters={"db": database},
    ).result_rows
    return [str(name) for (name,) in rows]
