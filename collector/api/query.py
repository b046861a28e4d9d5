"""`POST /api/query`: a person's read-only SQL, answered as JSON rows or CSV.

Three fences, each enough for what it guards: the statement must start as a read; ClickHouse's
parser must find only Assay's tables and harmless functions in it (`query_scope`); and it runs
on a read-only session with a time and a row limit."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.encoding import csv_response, error_response, json_response, json_rows
from assay.collector.api.query_scope import OutOfScope, QueryScope
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store, StoreError

READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
# Table functions that read files or reach the network: refused even though they only "read".
_OUTSIDE_ACCESS = re.compile(
    r"\b(file|url|s3|s3Cluster|gcs|azureBlobStorage|hdfs|remote|remoteSecure|cluster|mysql|"
    r"postgresql|mongodb|redis|sqlite|odbc|jdbc|executable|input|fileCluster|urlCluster)\s*\(",
    re.IGNORECASE,
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'")
MAX_SQL_BYTES = 100_000
EXPLAIN_MAX_LINES = 100_000


class RefusedQuery(ValueError):
    pass


def _bare(text: str) -> str:
    """The SQL without comments and with empty string literals: keywords as the parser sees."""
    return _STRINGS.sub("''", _COMMENTS.sub(" ", text))


def check_read_only(sql: str) -> str:
    """The SQL, stripped, if it is one read statement; RefusedQuery says why it is not."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise RefusedQuery("empty query")
    if len(text.encode()) > MAX_SQL_BYTES:
        raise RefusedQuery(f"query is over {MAX_SQL_BYTES} bytes")
    bare = _bare(text)
    first = bare.split(None, 1)[0].upper() if bare.split() else ""
    if first.lstrip("(") not in READ_STATEMENTS:
        raise RefusedQuery(
            f"only read queries are allowed ({', '.join(READ_STATEMENTS)}); "
            f"this one starts with {first!r}"
        )
    if ";" in bare:
        raise RefusedQuery("one statement per request")
    match = _OUTSIDE_ACCESS.search(bare)
    if match:
        raise RefusedQuery(
            f"table function {match.group(1)}() is not allowed: queries read Assay's tables only"
        )
    return text


def run_checked(
    store: Store, settings: CollectorSettings, sql: str, max_rows: int
) -> tuple[list[str], list[tuple[object, ...]]]:
    """Check what `sql` reaches (RefusedQuery if too much), then run it read-only."""

    def explain(explain_sql: str) -> list[str]:
        # A line per parse node: not bound by the result row limit. (The embedded reader
        # keeps the limits of its first query, this one, as its ceiling; each query's own
        # limit is applied to its rows.)
        limit = max(settings.query_max_rows, EXPLAIN_MAX_LINES)
        _, rows = store.query_readonly(explain_sql, settings.query_timeout_s, limit)
        if len(rows) >= limit:
            raise RefusedQuery("query is too large to check")
        return [str(row[0]) for row in rows]

    first_words = [word.upper() for word in _bare(sql).lstrip("(").split(None, 3)]
    try:
        QueryScope(store.database).check(sql, first_words, explain)
    except OutOfScope as exc:
        raise RefusedQuery(str(exc)) from exc
    return store.query_readonly(sql, settings.query_timeout_s, max_rows)


def requested_rows(payload: dict[str, Any], ceiling: int) -> int:
    """The request's `max_rows` (a positive integer, at most `ceiling`), else `ceiling`."""
    if "max_rows" not in payload:
        return ceiling
    value = payload["max_rows"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RefusedQuery(f"max_rows must be a positive integer, not {json.dumps(value)}")
    return min(value, ceiling)


async def query_endpoint(request: Request) -> Response:
    state = request.app.state
    usage = 'send JSON: {"sql": "SELECT ...", "format": "json" | "csv", "max_rows": N}'
    try:
        payload = await json_body(request)
    except BadBody as exc:
        return error_response(f"{exc}; {usage}", exc.status)
    if not isinstance(payload, dict) or not isinstance(payload.get("sql"), str):
        return error_response(usage)
    fmt = payload.get("format", "json")
    if fmt not in ("json", "csv"):
        return error_response(f"unknown format {fmt!r}: use json or csv")
    settings = state.settings
    try:
        sql = check_read_only(payload["sql"])
        max_rows = requested_rows(payload, settings.query_max_rows)
    except RefusedQuery as exc:
        return error_response(str(exc))
    try:
        columns, rows = await asyncio.to_thread(run_checked, state.store, settings, sql, max_rows)
    except RefusedQuery as exc:
        return error_response(str(exc))
    except StoreError as exc:
        return error_response(f"query failed: {exc}")
    if fmt == "csv":
        return csv_response(columns, rows)
    return json_response(
        {
            "columns": columns,
            "rows": json_rows(columns, rows),
            "row_count": len(rows),
            "truncated": len(rows) >= max_rows,
        }
    )
