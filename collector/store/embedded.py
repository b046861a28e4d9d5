"""The embedded store: a ClickHouse engine (chDB) in this process, on a local folder."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from assay.collector.private import private_folder
from assay.collector.store.base import ClickHouseStore, StoreError
from assay.collector.store.reading import QueryLimits, ReadSession, settings_clause

log = logging.getLogger("assay.collector.store")


class EmbeddedStore(ClickHouseStore):
    """chDB locks its folder: one process owns it, and everyone else reads through its API."""

    kind = "embedded"
    reports_duplicates = True
    _last_block: dict[str, int]

    def __init__(self, path: Path, database: str) -> None:
        self.path = Path(path).resolve()
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"the storage {self.path} is a file, not a folder (--storage)")
        try:
            private_folder(self.path)
        except OSError as exc:  # a parent that is a file, a folder we may not write in
            raise StoreError(f"cannot use the storage folder {self.path}: {exc.strerror}") from exc
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{self.path}")
        except Exception as exc:
            raise StoreError(
                f"cannot open embedded storage in {self.path}: {exc}. Another process (a running "
                "collector?) may own this folder; query it through that collector's API instead."
            ) from exc
        super().__init__(client, database)
        self._last_block = {}
        self._idle_readers: queue.SimpleQueue[Client] = queue.SimpleQueue()

    def _before_insert(self, table: str) -> None:
        if table not in self._last_block:
            _, rows = self.query(
                "SELECT max(max_block_number) FROM system.parts "
                "WHERE database = {db:String} AND table = {table:String}",
                {"db": self.database, "table": table},
            )
            self._last_block[table] = int(rows[0][0] or 0)

    def _new_rows(self, table: str) -> int | None:
        return self._new_rows_of([table])[table]

    def _forget_count(self, tables: list[str]) -> None:
        # The parts those inserts made are above the last block counted: the next insert
        # into each table reads its highest block number again before it is sent.
        for table in tables:
            self._last_block.pop(table, None)

    def _new_rows_of(self, tables: list[str]) -> dict[str, int]:
        # ClickHouse's reply counts the rows sent, stored or not (chDB's and a server's alike).
        # What an insert stored are its new parts: each block that is not a duplicate becomes a
        # part numbered above every earlier block of the table, and this process is the
        # folder's only writer, one insert at a time per table. A deduplicated block leaves no
        # part; a merge only makes parts from lower numbers (and keeps its sources listed).
        # One query for every table: a query costs chDB a few ms, whatever it reads.
        _, rows = self.query(
            "SELECT table, sum(rows), max(max_block_number) FROM system.parts "
            "WHERE database = {db:String} AND has({tables:Array(String)}, table) "
            "AND min_block_number > {after:Array(UInt64)}[indexOf({tables:Array(String)}, table)] "
            "GROUP BY table",
            {
                "db": self.database,
                "tables": tables,
                "after": [self._last_block[table] for table in tables],
            },
        )
        new = dict.fromkeys(tables, 0)
        for table, stored, last in rows:
            if stored:
                new[table] = int(stored)
                self._last_block[table] = int(last)
        return new

    @contextmanager
    def _read_client(self) -> Iterator[Client]:
        # chDB serves one call at a time per connection: each concurrent reader borrows one of
        # its own (opened on demand, kept for the next), none of them the writer's.
        try:
            client = self._idle_readers.get_nowait()
        except queue.Empty:
            client = self._open_client()
        try:
            yield client
        finally:
            self._idle_readers.put(client)

    @contextmanager
    def read_session(self, limits: QueryLimits) -> Iterator[ReadSession]:
        # A new session per request: chDB keeps USE and SET per connection. The limits are set
        # first and readonly last, since readonly=1 forbids changing any setting afterwards
        # (a SETTINGS clause included). Its current database is Assay's, so unqualified
        # table names mean Assay's tables.
        client = self._open_client()
        try:
            try:
                client.command(f"USE {self.database}")
                client.command(f"SET {settings_clause({**limits.settings(), 'readonly': 1})}")
            except Exception as exc:
                raise StoreError(f"cannot prepare a read session: {exc}") from exc
            yield ReadSession(client)
        finally:
            client.close()

    def _open_client(self) -> Client:
        try:
            return clickhouse_connect.get_client(dsn=f"chdb://{self.path}")
        except Exception as exc:
            raise StoreError(f"cannot open a read connection to {self.path}: {exc}") from exc

    def close(self) -> None:
        while True:
            try:
                self._idle_readers.get_nowait().close()
            except queue.Empty:
                break
            except Exception:
                log.debug("closing a read connection failed", exc_info=True)
        super().close()
