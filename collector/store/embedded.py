"""The embedded store: a ClickHouse engine (chDB) in this process, on a local folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from assay.collector.store.base import ClickHouseStore, StoreError


class EmbeddedStore(ClickHouseStore):
    """chDB locks its folder: one process owns it, and everyone else reads through its API."""

    kind = "embedded"
    reports_duplicates = True
    _last_block: dict[str, int]

    def __init__(self, path: Path, database: str) -> None:
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{self.path}")
        except Exception as exc:
            raise StoreError(
                f"cannot open embedded storage in {self.path}: {exc}. Another process (a running "
                "collector?) may own this folder; query it through that collector's API instead."
            ) from exc
        super().__init__(client, database)
        self._last_block = {}

    def _before_insert(self, table: str) -> None:
        if table not in self._last_block:
            _, rows = self.query(
                "SELECT max(max_block_number) FROM system.parts "
                "WHERE database = {db:String} AND table = {table:String}",
                {"db": self.database, "table": table},
            )
            self._last_block[table] = int(rows[0][0] or 0)

    def _new_rows(self, table: str) -> int | None:
        # ClickHouse's reply counts the rows sent, stored or not (chDB's and a server's alike).
        # What an insert stored are its new parts: each block that is not a duplicate becomes a
        # part numbered above every earlier block of the table, and this process is the
        # folder's only writer, one insert at a time per table. A deduplicated block leaves no
        # part; a merge only makes parts from lower numbers (and keeps its sources listed).
        _, rows = self.query(
            "SELECT sum(rows), max(max_block_number) FROM system.parts "
            "WHERE database = {db:String} AND table = {table:String} "
            "AND min_block_number > {after:UInt64}",
            {"db": self.database, "table": table, "after": self._last_block[table]},
        )
        new, last = rows[0]
        if new:
            self._last_block[table] = int(last)
        return int(new or 0)

    def _open_reader(self, limits: dict[str, Any]) -> Client:
        # A second session on the same engine. chDB keeps SETs per session, and readonly=1
        # forbids changing settings afterwards, so the limits go first and readonly last.
        # Its current database is Assay's, so unqualified table names mean Assay's tables.
        reader = clickhouse_connect.get_client(dsn=f"chdb://{self.path}")
        reader.command(f"USE {self.database}")
        for name, value in limits.items():
            reader.command(
                f"SET {name} = {value!r}" if isinstance(value, str) else f"SET {name} = {value}"
            )
        reader.command("SET readonly = 1")
        return reader
