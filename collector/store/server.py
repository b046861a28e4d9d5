"""The server store: a ClickHouse server reached over HTTP with clickhouse-connect."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from assay.collector.store.base import DEFAULT_DATABASE, ClickHouseStore, StoreError
from assay.collector.store.reading import QueryLimits, ReadSession


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
        self._reader: Client | None = None
        self._reader_lock = threading.Lock()
        super().__init__(client, database)

    @contextmanager
    def read_session(self, limits: QueryLimits) -> Iterator[ReadSession]:
        # Over HTTP without a session id every request is a session of its own, carrying its
        # settings; readonly=2 lets them be sent (the API refuses SETTINGS clauses and SET).
        with self._reader_lock:
            if self._reader is None:
                self._reader = self._open_reader()
        yield ReadSession(self._reader, {**limits.settings(), "readonly": 2})

    def _open_reader(self) -> Client:
        try:
            # Opened after the migrations, so Assay's database exists; unqualified table names
            # in a person's SQL then mean Assay's tables.
            return clickhouse_connect.get_client(
                **self._connect_args, database=self.database, autogenerate_session_id=False
            )
        except Exception as exc:
            raise StoreError(f"cannot open a read connection: {exc}") from exc

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        super().close()
