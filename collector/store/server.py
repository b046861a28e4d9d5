"""The server store: a ClickHouse server reached over HTTP with clickhouse-connect."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from assay.collector.settings import DEFAULT_DATABASE
from assay.collector.store.base import ClickHouseStore, StoreError


def parse_clickhouse_url(url: str) -> dict[str, Any]:
    """`http://user:pass@host:8123/db` → clickhouse-connect arguments and the database name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"not a ClickHouse HTTP URL: {url!r} (want http://user:pass@host:8123/db)")
    return {
        "host": parts.hostname,
        "port": parts.port or (8443 if parts.scheme == "https" else 8123),
        "username": unquote(parts.username or "default"),
        "password": unquote(parts.password or ""),
        "secure": parts.scheme == "https",
        "database": parts.path.strip("/") or DEFAULT_DATABASE,
    }


class ServerStore(ClickHouseStore):
    kind = "server"

    def __init__(self, url: str, connect_timeout: float = 10, cluster: str | None = None) -> None:
        self.cluster = cluster or None
        args = parse_clickhouse_url(url)
        database = str(args.pop("database"))
        try:
            # Connect to `default`: the assay database may not exist until migrations run.
            client = clickhouse_connect.get_client(
                **args,
                database="default",
                connect_timeout=connect_timeout,
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise StoreError(
                f"cannot reach ClickHouse at {args['host']}:{args['port']}: {exc}"
            ) from exc
        self._connect_args = args
        super().__init__(client, database)

    def _open_reader(self, limits: dict[str, Any]) -> Client:
        # Opened after the migrations, so Assay's database exists; unqualified table names in
        # a person's SQL then mean Assay's tables.
        return clickhouse_connect.get_client(**self._connect_args, database=self.database)

    def _per_query_settings(self, limits: dict[str, Any]) -> dict[str, Any] | None:
        # Over HTTP every request carries its own settings; readonly=2 still lets them be set.
        return {**limits, "readonly": 2}
