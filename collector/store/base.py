"""The Store interface, and its implementation on a clickhouse-connect client."""

from __future__ import annotations

import logging
import math
import re
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from clickhouse_connect.driver import exceptions as clickhouse_errors
from clickhouse_connect.driver.client import Client

from assay.collector.schema import ScoreRow, insert_arguments
from assay.collector.stage_timing import stage
from assay.collector.store.migrations import (
    SchemaTooNew,
    apply_migrations,
    reload_views,
    restore_views,
)

if TYPE_CHECKING:
    from assay.collector.store.reading import QueryLimits, ReadSession

log = logging.getLogger("assay.collector.store")
DEFAULT_DATABASE = "assay"  # the database Assay's tables live in unless told otherwise


# Tables are partitioned by day (by month for the long-lived rollups), and a batch may hold any
# number of days: a backfill, or a client whose spans span years. ClickHouse refuses an insert
# block over 100 partitions by default; the receivers bound every time to 1970-2100.
INSERT_SETTINGS: dict[str, Any] = {"max_partitions_per_insert_block": 0}
# And by table. Every reader of `scores` and of `call_scores` (which its view fills) takes a
# score's latest row (FINAL, or argMax by timestamp), as it must for a score sent again in a
# later insert: an insert need not collapse the repeats of one block as well
# (ReplacingMergeTree's `optimize_on_insert`, which the view's insert inherits). A 10,000-score
# insert: 4.2 -> 3.3 µs of CPU per score (bench/evaluation_cost.py's calls).
TABLE_INSERT_SETTINGS: dict[str, dict[str, Any]] = {ScoreRow.table: {"optimize_on_insert": 0}}


class StoreError(Exception):
    """The store refused or failed an operation; the message says why."""


# What gives the ClickHouse settings of each `query` in this context: the limits of the UI's
# and API's reads, set by store/reading.py's `bounded` around them (a function, since the time
# left to a page's reads shrinks from query to query). None elsewhere (the writer's own
# look-ups, migrations, retention), whose queries must not fail at a reader's limit.
READ_SETTINGS: ContextVar[Callable[[], dict[str, Any]] | None] = ContextVar(
    "assay_read_settings", default=None
)


class DataError(StoreError):
    """The store refused an insert for the values it holds: sending the same rows again fails
    the same way, whereas a StoreError may pass once the store is back."""


# ClickHouse's errors about an insert's values (ErrorCodes.cpp); every other error (network,
# disk, memory, too many parts, a missing table) is the store's, and the write is retried.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT
    }
)
_CODE = re.compile(r"\bCode: (\d+)\.")
# What clickhouse-connect raises while encoding a value into the column's type, before anything
# is sent (a number out of the column's range, a string that is not UTF-8, None in a non-null
# column): its own DataError, or the conversion's exception itself.
_ENCODING_ERRORS = (
    clickhouse_errors.DataError,
    ValueError,
    TypeError,
    OverflowError,
    AttributeError,
    struct.error,
)


def is_data_error(exc: BaseException) -> bool:
    """Whether `exc`, raised by an insert, is about the rows' values rather than the store."""
    if isinstance(exc, _ENCODING_ERRORS):
        return True
    if isinstance(exc, clickhouse_errors.OperationalError):
        return False
    found = _CODE.search(str(exc))
    return found is not None and int(found.group(1)) in DATA_ERROR_CODES


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

    def insert_rows(self, rows: Sequence[Any], dedup_token: str | None = None) -> Inserted: ...

    def counting(
        self, counted: dict[str, int], first_time: bool = False
    ) -> AbstractContextManager[None]: ...

    def visible_until_ms(self, table: str) -> int: ...

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    def read_session(self, limits: QueryLimits) -> AbstractContextManager[ReadSession]: ...

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
        self._client = client  # the writer's: inserts, DDL, migrations
        self.database = database
        # One insert at a time per table, so that what an insert stored can be told apart.
        self._table_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        # Column types by table, from DESCRIBE once (clickhouse-connect otherwise asks before
        # every insert); forgotten when an insert fails, in case the table changed.
        self._column_types: dict[str, dict[str, str]] = {}
        # .held: this thread's `counting` block, if any; .first_time: that block's argument
        self._batches = threading.local()
        # When each insert still running began (time.time()), by table: see visible_until_ms.
        self._in_flight: dict[str, dict[int, float]] = defaultdict(dict)

    def migrate(self) -> list[str]:
        """Create the database and apply the migrations not applied yet; return their names.
        After migrations, the views are reloaded: the engine then derives their deduplication
        tokens as it will after its next restart (migrations.reload_views). Raises StoreError
        (the start then says why, as for a store it cannot reach)."""
        try:
            restore_views(self._client, self.database, self.cluster)  # a reload cut short
            applied = apply_migrations(self._client, self.database, self.cluster)
            if applied:
                reload_views(self._client, self.database, self.cluster)
        except clickhouse_errors.ClickHouseError as exc:  # a full disk, a user without DDL
            raise StoreError(f"migrating the schema failed: {exc}") from exc
        except SchemaTooNew as exc:
            raise StoreError(str(exc)) from exc
        return applied

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
        settings: dict[str, Any] = {**INSERT_SETTINGS, **TABLE_INSERT_SETTINGS.get(table, {})}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        batch: dict[str, threading.Lock] | None = getattr(self._batches, "held", None)
        first_time = batch is not None and self._batches.first_time
        if first_time and not dedup_token:  # without one the store drops a block it has seen
            raise ValueError(f"an insert into {table} counted as first-time needs a token")
        lock = self._table_locks[table]
        if batch is not None and table not in batch:
            lock.acquire()  # held until the `counting` block ends, which counts this insert
            batch[table] = lock
        in_flight = self._in_flight[table]
        in_flight[id(columns)] = time.time()  # before the store can stamp a row of it
        try:
            with nullcontext() if batch is not None else lock:
                if not first_time:
                    with stage("count new rows"):
                        self._before_insert(table)
                with stage(f"insert {table}"):
                    self._client.insert(
                        f"{self.database}.{table}",
                        columns,
                        column_names=list(column_names),
                        column_type_names=self._insert_types(table, column_names),
                        column_oriented=True,
                        settings=settings,
                    )
                if first_time:  # a token never sent before: the store kept every row
                    return Inserted(len(columns[0]), len(columns[0]))
                if batch is not None:
                    return Inserted(len(columns[0]), None)
                with stage("count new rows"):
                    new = self._new_rows(table)
        except Exception as exc:
            self._column_types.pop(table, None)
            error = DataError if is_data_error(exc) else StoreError
            raise error(f"insert into {table} failed: {exc}") from exc
        finally:
            del in_flight[id(columns)]
        sent = len(columns[0])
        # Parts another writer added to the table since the last insert (a test's own INSERT
        # ... SELECT on a shared store) count as new: never more than were sent, so a
        # deduplicated count can never go negative and break the collector_stats row.
        return Inserted(sent, None if new is None else min(new, sent))

    @contextmanager
    def counting(self, counted: dict[str, int], first_time: bool = False) -> Iterator[None]:
        """Count what this thread's inserts in the block stored together, in one query when it
        ends, rather than after each insert: `counted` then holds the rows stored by table
        (each insert's own `new` is None). Each table an insert in the block touches stays
        locked until then, so no other insert into it is counted as this block's. A store that
        cannot tell what an insert stored leaves `counted` empty, as does a count that fails.

        `first_time` says no insert of the block carries a deduplication token sent before
        (a segment's first attempt in the run that spooled it): the store dropped none of
        their rows, so each insert that returns says it stored all it sent, and the store is
        not asked (a query over the tables' parts, 10-30 ms a segment)."""
        if getattr(self._batches, "held", None) is not None:
            raise RuntimeError("counting blocks do not nest")
        held: dict[str, threading.Lock] = {}
        self._batches.held = held
        self._batches.first_time = first_time
        try:
            yield
        finally:
            self._batches.held = None
            try:
                if held and first_time:
                    self._forget_count(list(held))
                elif held:
                    with stage("count new rows"):
                        counted.update(self._new_rows_of(list(held)))
            except Exception:  # the rows are stored: only their count is unknown
                log.warning("could not count the rows a batch stored", exc_info=True)
            finally:
                for lock in held.values():
                    lock.release()

    def visible_until_ms(self, table: str) -> int:
        """The store's clock (Unix milliseconds) up to which whatever this process inserted into
        `table`, and the rows its views derived, can be read. A view stamps its rows with the
        store's clock (`now64()`) while the insert runs, but they are read only once the insert
        ends: a reader that moves past "now" while an insert runs would never see them. So this
        is the store's now, or, while inserts into `table` run, just before the oldest began."""
        _, [[now]] = self.query("SELECT toUnixTimestamp64Milli(now64(3))")
        # Read after `now`: an insert that begins later stamps its rows later than `now`.
        oldest = min(list(self._in_flight[table].values()), default=None)
        if oldest is None:
            return int(now)
        # The age of the oldest insert on this machine's clock, moved onto the store's.
        return min(int(now), int(now) - math.ceil((time.time() - oldest) * 1000) - 1)

    def insert_rows(self, rows: Sequence[Any], dedup_token: str | None = None) -> Inserted:
        """Rows of one type of collector/schema.py into its table, through `insert`."""
        if not rows:
            return Inserted(0, 0)
        with stage("build columns"):
            arguments = insert_arguments(rows)
        return self.insert(*arguments, dedup_token=dedup_token)

    def _insert_types(self, table: str, column_names: Sequence[str]) -> list[str] | None:
        """The types to encode `column_names` of `table` as (None: clickhouse-connect asks)."""
        types = self._column_types.get(table)
        if types is None:
            result = self._client.query(f"DESCRIBE TABLE {self.database}.{table}")
            types = {str(row[0]): str(row[1]) for row in result.result_rows}
            self._column_types[table] = types
        if not all(name in types for name in column_names):
            return None
        return [types[name] for name in column_names]

    # How the store tells what an insert stored; both are called with the table's insert lock.
    def _before_insert(self, table: str) -> None:
        pass

    def _new_rows(self, table: str) -> int | None:
        """How many rows the insert into `table` that just returned stored, if the store can
        tell."""
        return None

    def _new_rows_of(self, tables: list[str]) -> dict[str, int]:
        """`_new_rows` of several tables at once: those the store can tell."""
        return {}

    def _forget_count(self, tables: list[str]) -> None:
        """Inserts into `tables` were not counted: the next count of each starts afresh."""

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The API's and UI's own reads, off the writer's connection."""
        bounds = READ_SETTINGS.get()
        if bounds is not None:
            settings = {**bounds(), **(settings or {})}
        try:
            with self._read_client() as client:
                result = client.query(sql, parameters=parameters, settings=settings)
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    @contextmanager
    def _read_client(self) -> Iterator[Client]:
        """A connection for reads. This one serves concurrent calls (HTTP); the embedded store,
        whose connections serve one call at a time, keeps connections of its own."""
        yield self._client

    def read_session(self, limits: QueryLimits) -> AbstractContextManager[ReadSession]:
        """A fresh read-only session for a person's SQL, enforcing `limits` (store/reading.py)."""
        raise NotImplementedError

    def command(self, sql: str) -> None:
        """A statement without a result (DDL, ALTER)."""
        try:
            self._client.command(sql)
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def ping(self) -> bool:
        """Whether the store answers; on a read connection, so a write in progress does not
        hold the health check up."""
        try:
            with self._read_client() as client:
                return bool(client.ping())
        except Exception:
            return False

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing a dead connection must not hide the real problem
            log.debug("closing the ClickHouse client failed", exc_info=True)
