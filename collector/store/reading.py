"""Reading from the store apart from the writer: a person's SQL on a fresh read-only session
with limits, and the read connections the API and UI share.

The embedded engine serialises every call on one connection, so a read on the writer's
connection makes the writer wait: reads get their own connections. A person's SQL gets a new
session per request, so nothing one request does to a session (`USE`, settings) is seen by the
next, and limits ClickHouse enforces itself: time, memory, threads, result rows and bytes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from clickhouse_connect.driver.client import Client

from assay.collector.store.base import StoreError

Rows = tuple[list[str], list[tuple[Any, ...]]]
# The nice value of the threads ClickHouse runs a person's query on: the kernel gives the CPU to
# ingestion, health checks and the UI first. ClickHouse sets it on its own executor threads
# (os_thread_priority); a nice value set on the thread that sends the query does not reach them.
QUERY_NICE = 19


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
