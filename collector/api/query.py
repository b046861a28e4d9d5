"""`POST /api/query`: a person's read-only SQL, answered as JSON rows or CSV."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import csv_response, error_response, json_response, json_rows
from assay.collector.store.base import StoreError

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


class RefusedQuery(ValueError):
    pass


def check_read_only(sql: str) -> str:
    """The SQL, stripped, if it is one read statement; RefusedQuery says why it is not."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise RefusedQuery("empty query")
    if len(text.encode()) > MAX_SQL_BYTES:
        raise RefusedQuery(f"query is over {MAX_SQL_BYTES} bytes")
    bare = _STRINGS.sub("''", _COMMENTS.sub(" ", text))
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


async def query_endpoint(request: Request) -> Response:
    state = request.app.state
    try:
        payload = await request.json()
    except Exception:
        return error_response('send JSON: {"sql": "SELECT ...", "format": "json" | "csv"}')
    if not isinstance(payload, dict) or not isinstance(payload.get("sql"), str):
        return error_response('send JSON: {"sql": "SELECT ...", "format": "json" | "csv"}')
    fmt = payload.get("format", "json")
    if fmt not in ("json", "csv"):
        return error_response(f"unknown format {fmt!r}: use json or csv")
    try:
        sql = check_read_only(payload["sql"])
    except RefusedQuery as exc:
        return error_response(str(exc))
    settings = state.settings
    max_rows = min(int(payload.get("max_rows") or settings.query_max_rows), settings.query_max_rows)
    try:
        columns, rows = await asyncio.to_thread(
            state.store.query_readonly, sql, settings.query_timeout_s, max_rows
        )
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
