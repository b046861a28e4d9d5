"""The Store interface, and its implementation on a clickhouse-connect client."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from assay.collector.store.migrations import apply_migrations

log = logging.getLogger("assay.collector.store")


class StoreError(Exception):
    """The store refused or failed an operation; the message says why."""


@dataclass(frozen=True)
class Inserted:
    """What the store did with one insert: of `rows` sent, `new` were stored and the rest were
    dropped as duplicates of an earlier insert with the same deduplication token. `new` is None
    when the store cannot tell (a ClickHouse server does not say so in its reply)."""

    rows: int
    new: int | None

    @property
    def deduplicated(self) -> int:
        return 0 if self.new is None else self.rows - self.new


class Store(Protocol):
    """Where rows go and queries come from: embedded ClickHouse or a ClickHouse server."""

    database: str

    def insert(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> Inserted: ...

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def query_readonly(
        self, sql: str, timeout_s: int, max_rows: int
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def command(self, sql: str) -> None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class ClickHouseStore:
    """A Store on a clickhouse-connect client; the embedded and server stores differ only in
    how the client is opened, because chDB speaks the same SQL through the same client."""

    kind = "clickhouse"
    # Whether `insert` tells the rows it stored from those it dropped as duplicates.
    reports_duplicates = False

    # The ClickHouse cluster the schema is distributed over (server stores only), else None.
    cluster: str | None = None

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self.database = database
        self._reader: Client | None = None
        self._reader_lock = threading.Lock()
        # One insert at a time per table, so that what an insert stored can be told apart.
        self._table_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def migrate(self) -> list[str]:
        """Create the database and apply the migrations not applied yet; return their names."""
        return apply_migrations(self._client, self.database, self.cluster)

    def insert(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> Inserted:
        if not columns or not columns[0]:
            return Inserted(0, 0)
        # The token makes a retried insert of the same block a no-op (MergeTree deduplication),
        # so retries never create duplicate rows.
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        try:
            with self._table_locks[table]:
                self._before_insert(table)
                self._client.insert(
                    f"{self.database}.{table}",
                    columns,
                    column_names=list(column_names),
                    column_oriented=True,
                    settings=settings,
                )
                new = self._new_rows(table)
        except Exception as exc:
            raise StoreError(f"insert into {table} failed: {exc}") from exc
        return Inserted(len(columns[0]), new)

    # How the store tells what an insert stored; both are called with the table's insert lock.
    def _before_insert(self, table: str) -> None:
        pass

    def _new_rows(self, table: str) -> int | None:
        """How many rows the insert into `table` that just returned stored, if the store can
        tell."""
        return None

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            result = self._client.query(sql, parameters=parameters, settings=settings)
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def query_readonly(
        self, sql: str, timeout_s: int, max_rows: int
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a person's SQL on a separate read-only session: writes, DDL and table functions
        that reach files or the network are refused by ClickHouse itself."""
        limits = {
            "max_execution_time": timeout_s,
            "max_result_rows": max_rows,
            "result_overflow_mode": "break",
        }
        try:
            with self._reader_lock:
                if self._reader is None:
                    self._reader = self._open_reader(limits)
            result = self._reader.query(sql, settings=self._per_query_settings(limits))
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows[:max_rows]]

    def _open_reader(self, limits: dict[str, Any]) -> Client:
        raise NotImplementedError

    def _per_query_settings(self, limits: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def command(self, sql: str) -> None:
        """A statement without a result (DDL, ALTER)."""
        try:
            self._client.command(sql)
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def close(self) -> None:
        try:
            if self._reader is not None:
                self._reader.close()
            self._client.close()
        except Exception:  # closing a dead connection must not hide the real problem
            log.debug("closing the ClickHouse client failed", exc_info=True)
