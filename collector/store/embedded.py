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
