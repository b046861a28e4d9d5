"""Reading from the store apart from the writer: a person's SQL on a fresh read-only session
with limits, the limits of the API's and UI's own reads, and the read connections they share.

The embedded engine serialises every call on one connection, so a read on the writer's
connection makes the writer wait: reads get their own connections. A person's SQL gets a new
session per request, so nothing one request does to a session (`USE`, settings) is seen by the
next, and limits ClickHouse enforces itself: time, memory, threads, result rows and bytes."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from clickhouse_connect.driver.client import Client

from assay.collector.store.base import READ_SETTINGS, StoreError

Rows = tuple[list[str], list[tuple[Any, ...]]]
# The nice value of the threads ClickHouse runs a person's query on: the kernel gives the CPU to
# ingestion, health checks and the UI first. ClickHouse sets it on its own executor threads
# (os_thread_priority); a nice value set on the thread that sends the query does not reach them.
QUERY_NICE = 19


def lower_priority() -> None:
    """The calling thread at QUERY_NICE: a pool's initializer for the threads that wait on
    ClickHouse for a person's query or the UI's and API's reads (the engine's own executor
    threads get theirs from the query's settings)."""
    # Not on Linux (no per-thread priority): queries share the CPU evenly.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), QUERY_NICE)


@dataclass(frozen=True)
class QueryLimits:
    """What one query of a person's may take of the collector's machine."""

    timeout_s: int
    max_rows: int
    max_memory_bytes: int
    max_threads: int
    max_result_bytes: int

    def with_rows(self, max_rows: int) -> QueryLimits:
        return replace(self, max_rows=max_rows)

    def settings(self) -> dict[str, Any]:
        """The ClickHouse settings that enforce them ("break": a result past its row or byte
        limit is cut, not an error; `truncated` in the answer says so)."""
        return {
            "max_execution_time": self.timeout_s,
            "max_memory_usage": self.max_memory_bytes,
            "max_threads": self.max_threads,
            "max_result_rows": self.max_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "break",
            "os_thread_priority": QUERY_NICE,
        }


def settings_clause(settings: dict[str, Any]) -> str:
    """`SET`'s list: `a = 1, b = 'x'`."""
    return ", ".join(
        f"{name} = {value!r}" if isinstance(value, str) else f"{name} = {value}"
        for name, value in settings.items()
    )


class ReadSession:
    """One read-only session: every query it runs gets the same limits."""

    def __init__(self, client: Client, per_query: dict[str, Any] | None = None) -> None:
        self._client = client
        self._per_query = per_query  # settings sent with each query (sessions without state)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Rows:
        """The columns and rows of `sql`, read whole (EXPLAIN, SHOW and DESCRIBE cannot be
        streamed; their results are small)."""
        try:
            result = self._client.query(sql, parameters=parameters, settings=self._per_query)
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def select(self, sql: str, max_rows: int) -> Rows:
        """The columns and first `max_rows` rows of a SELECT, streamed: the rest is never read,
        and the query stops."""
        rows: list[tuple[Any, ...]] = []
        try:
            with self._client.query_row_block_stream(sql, settings=self._per_query) as stream:
                columns = list(stream.source.column_names)
                for block in stream:
                    rows.extend(block)
                    if len(rows) >= max_rows:
                        del rows[max_rows:]
                        break
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        return columns, rows


class ReadLimitExceeded(StoreError):
    """One of the UI's or API's reads went past a limit of ReadLimits; the message says which,
    and what to do about it."""


# ClickHouse's error codes for the limits ReadLimits sets (ErrorCodes.cpp).
_TIMEOUT_EXCEEDED = 159
_MEMORY_LIMIT_EXCEEDED = 241
_TOO_MANY_ROWS_OR_BYTES = 396
_CODE = re.compile(r"\bCode: (\d+)\.")
_NARROW = (
    "narrow it (a shorter time range, one service or model, a more specific search) and ask again"
)


@dataclass(frozen=True)
class ReadLimits:
    """What one of the UI's and the API's own reads may take: each query of a page or an
    answer, as ClickHouse enforces it. Unlike a person's SQL, a result past its row or byte
    limit is an error, not cut: a page that silently lacks rows would be wrong."""

    timeout_s: float
    max_memory_bytes: int
    max_threads: int
    max_result_rows: int
    max_result_bytes: int

    def settings(self, deadline: float | None = None) -> dict[str, Any]:
        """The settings of a query sent now, with the time left until `deadline` (monotonic
        seconds) when there is one and it is less than the limit."""
        timeout = self.timeout_s
        if deadline is not None:
            # Never 0, which ClickHouse reads as "no limit": a read out of time fails at once.
            timeout = max(min(timeout, deadline - time.monotonic()), 0.001)
        return {
            "max_execution_time": timeout,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_threads": self.max_threads,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "os_thread_priority": QUERY_NICE,
        }

    def exceeded(self, exc: StoreError) -> str | None:
        """What a person reads when `exc` is ClickHouse stopping a read at one of these limits;
        None for any other failure."""
        found = _CODE.search(str(exc))
        code = int(found.group(1)) if found else None
        if code == _TIMEOUT_EXCEEDED:
            return (
                f"reading this took longer than {self.timeout_s:g} s, the limit of the UI's "
                f"and API's reads (read_timeout_s): {_NARROW}"
            )
        if code == _MEMORY_LIMIT_EXCEEDED:
            return (
                f"this read needed more than {self.max_memory_bytes / 1024**2:.0f} MiB, the limit "
                f"of the UI's and API's reads (read_max_memory_bytes): {_NARROW}"
            )
        if code == _TOO_MANY_ROWS_OR_BYTES:
            return (
                f"this answer is over {self.max_result_rows:,} rows or "
                f"{self.max_result_bytes / 1024**2:.0f} MiB, the limit of the UI's and API's "
                "reads (read_max_result_rows, read_max_result_bytes): "
                "ask for less, or use POST /api/query with LIMIT"
            )
        return None


@contextmanager
def bounded(limits: ReadLimits, deadline: float | None = None) -> Iterator[None]:
    """Every store query in this context (this thread's) carries `limits`, and none runs past
    `deadline` (monotonic seconds); one that goes past them raises ReadLimitExceeded with a
    message for people."""
    token = READ_SETTINGS.set(lambda: limits.settings(deadline))
    try:
        yield
    except ReadLimitExceeded:
        raise
    except StoreError as exc:
        message = limits.exceeded(exc)
        if message is None:
            raise
        raise ReadLimitExceeded(message) from exc
    finally:
        READ_SETTINGS.reset(token)
