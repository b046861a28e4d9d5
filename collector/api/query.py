"""`POST /api/query`: a person's read-only SQL, answered as JSON rows or CSV.

Fences, each enough for what it guards: ClickHouse's parser splits the text and it must be one
statement, a read; the parser must find only Assay's tables and harmless functions in it
(`query_scope`); it runs on a fresh read-only session (no `USE` or setting outlives the
request) whose limits ClickHouse enforces (time, memory, threads, result rows and bytes); and
only `query_concurrency` queries run at once, on threads of their own (`query_gate`)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.encoding import csv_response, error_response, json_response, json_rows
from assay.collector.api.query_gate import RETRY_AFTER_S, QueriesBusy, QueryGate
from assay.collector.api.query_scope import OutOfScope, QueryScope
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store, StoreError
from assay.collector.store.reading import QueryLimits, ReadSession

READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")
MAX_SQL_BYTES = 100_000
EXPLAIN_MAX_LINES = 100_000
# ClickHouse's own words when the text holds more than one statement.
_MULTI_STATEMENT = "Multi-statements are not allowed"


class RefusedQuery(ValueError):
    pass


# ClickHouse ends an error with the query it was running ("In scope SELECT ..."): here the
# formatQuery() wrapper of the check, or the statement as the formatter rewrote it, neither of
# which the person wrote. Kept: the error's name. "Code: 62. DB::Exception:" says nothing to them.
_IN_SCOPE = re.compile(r"[.:]?\s*In scope .*?(\s*\([A-Z_]+\))?\s*$", re.DOTALL)
_PREFIX = re.compile(r"^Code: \d+\. DB::Exception: ")
_POSITION = re.compile(r"failed at position (\d+)")


def in_user_terms(error: str, sql: str) -> str:
    """A ClickHouse error about `sql`, as its author reads it: without the rewritten query it
    names, and with the line of their text a syntax error points at, marked."""
    message = _IN_SCOPE.sub(lambda m: (m.group(1) or "").rstrip(), _PREFIX.sub("", error.strip()))
    found = _POSITION.search(message)
    if found is None:
        return message
    # ClickHouse counts bytes, from 1.
    at = len(sql.encode()[: int(found.group(1)) - 1].decode(errors="ignore"))
    start = sql.rfind("\n", 0, at) + 1
    end = sql.find("\n", at)
    line = sql[start : end if end != -1 else len(sql)]
    return f"{message}\n  {line}\n  {' ' * (at - start)}^"


def query_limits(settings: CollectorSettings) -> QueryLimits:
    """What one request's session may take. Its row limit is the ceiling of every query on it,
    EXPLAINs of the check included; each query reads only as many rows as it asked for."""
    return QueryLimits(
        timeout_s=settings.query_timeout_s,
        max_rows=max(settings.query_max_rows, EXPLAIN_MAX_LINES),
        max_memory_bytes=settings.query_max_memory_bytes,
        max_threads=settings.query_max_threads,
        max_result_bytes=settings.query_max_result_bytes,
    )


def one_statement(session: ReadSession, sql: str) -> str:
    """The one statement in `sql`, as ClickHouse's formatter writes it (no comments, canonical
    keywords). ClickHouse's own parser splits the text, string literals and comments included;
    more than one statement, or none, is a RefusedQuery."""
    if not sql.strip():
        raise RefusedQuery("empty query")
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise RefusedQuery(f"query is over {MAX_SQL_BYTES} bytes")
    try:
        _, rows = session.query("SELECT formatQuery({sql:String})", {"sql": sql})
    except StoreError as exc:
        if _MULTI_STATEMENT in str(exc):
            raise RefusedQuery("one statement per request") from exc
        raise RefusedQuery(
            f"ClickHouse cannot parse the query: {in_user_terms(str(exc), sql)}"
        ) from exc
    statement = str(rows[0][0]).strip()
    first = statement.split(None, 1)[0].upper() if statement else ""
    if first.lstrip("(") not in READ_STATEMENTS:
        raise RefusedQuery(
            f"only read queries are allowed ({', '.join(READ_STATEMENTS)}); "
            f"this one starts with {first!r}"
        )
    return statement


def answer(store: Store, limits: QueryLimits, sql: str, max_rows: int, fmt: str) -> Response:
    """Check `sql` (RefusedQuery if it reaches too far), run it, and encode the result: all on
    one fresh read-only session, on a query thread (big results are encoded off the event
    loop too)."""
    with store.read_session(limits) as session:

        def explain(explain_sql: str) -> list[str]:
            _, rows = session.query(explain_sql)
            if len(rows) >= EXPLAIN_MAX_LINES:
                raise RefusedQuery("query is too large to check")
            return [str(row[0]) for row in rows]

        statement = one_statement(session, sql)
        first_words = [word.upper() for word in statement.lstrip("(").split(None, 3)]
        try:
            QueryScope(store.database).check(statement, first_words, explain)
        except OutOfScope as exc:
            raise RefusedQuery(str(exc)) from exc
        if first_words[0] in ("SELECT", "WITH"):
            columns, rows = session.select(statement, max_rows)
        else:  # SHOW, DESCRIBE, EXPLAIN, EXISTS: small answers, which cannot be streamed
            columns, all_rows = session.query(statement)
            rows = all_rows[:max_rows]
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
        max_rows = requested_rows(payload, settings.query_max_rows)
    except RefusedQuery as exc:
        return error_response(str(exc))
    limits = query_limits(settings)
    gate: QueryGate = state.query_gate
    try:
        return await gate.run(
            functools.partial(answer, state.store, limits, payload["sql"], max_rows, fmt)
        )
    except QueriesBusy as exc:
        return error_response(str(exc), 429, {"Retry-After": str(RETRY_AFTER_S)})
    except RefusedQuery as exc:
        return error_response(str(exc))
    except StoreError as exc:
        return error_response(f"query failed: {in_user_terms(str(exc), payload['sql'])}")
