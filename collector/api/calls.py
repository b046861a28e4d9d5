"""`GET /api/calls`: recent LLM calls, filtered by service, model, status and time range;
`GET /api/calls/{span_id}`: one call with its scores."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import (
    error_response,
    found_response,
    json_response,
    json_rows,
    read_failure,
)
from assay.collector.records.calls import EQUALITY_FILTERS, get_call, parse_time
from assay.collector.records.read_gate import ReadsBusy, stored
from assay.collector.schema import CALL_LIST_COLUMNS
from assay.collector.store.base import Store, StoreError

MAX_LIMIT = 1000


def _clamped_int(params: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    """The integer parameter `key` moved into [low, high]; ValueError when it is no integer."""
    text = params.get(key)
    if text is None:
        return default
    try:
        return min(max(int(text), low), high)
    except ValueError:
        raise ValueError(f"{key} must be an integer, not {text!r}") from None


def calls_query(
    params: dict[str, str], database: str, now: dt.datetime, max_offset: int
) -> tuple[str, dict[str, Any], int]:
    """The SQL of a list of calls; ValueError for a parameter it cannot take, an offset over
    `max_offset` included (an OFFSET reads every key above it: deeper pages go by time)."""
    where: list[str] = []
    values: dict[str, Any] = {}
    for key, column in EQUALITY_FILTERS.items():
        if params.get(key):
            where.append(f"{column} = {{{key}:String}}")
            values[key] = params[key]
    for key, op in (("since", ">="), ("until", "<")):
        if params.get(key):
            try:
                moment = parse_time(params[key], now)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}; use e.g. 15m, 24h, 7d or an ISO time") from exc
            where.append(f"timestamp {op} {{{key}:DateTime64(9, 'UTC')}}")
            values[key] = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    limit = _clamped_int(params, "limit", 100, 1, MAX_LIMIT)
    offset = _clamped_int(params, "offset", 0, 0, max_offset + 1)
    if offset > max_offset:
        raise ValueError(
            f"offset is at most {max_offset:,} (read_max_offset): to read further back, "
            "ask for calls until the time of the last call you have (until=<its timestamp>)"
        )
    sql = (
        f"SELECT {', '.join(CALL_LIST_COLUMNS)} FROM {database}.llm_calls"
        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
        f" ORDER BY timestamp DESC LIMIT {limit} OFFSET {offset}"
    )
    return sql, values, limit


async def calls_endpoint(request: Request) -> Response:
    state = request.app.state
    try:
        sql, values, limit = calls_query(
            dict(request.query_params),
            state.store.database,
            dt.datetime.now(dt.timezone.utc),
            state.settings.read_max_offset,
        )
    except ValueError as exc:
        return error_response(str(exc))
    try:
        columns, rows = await stored(request, _rows, sql, values)
    except (ReadsBusy, StoreError) as exc:
        return read_failure(exc)
    return json_response({"calls": json_rows(columns, rows), "limit": limit})


def _rows(store: Store, sql: str, values: dict[str, Any]) -> tuple[list[str], list[Any]]:
    return store.query(sql, values)


# Columns holding JSON text: the detail view returns them parsed.
JSON_COLUMNS = ("input_messages", "output_messages", "system_instructions", "tool_definitions")


def _parsed(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # stored as sent: not every instrumentation sends JSON


async def call_endpoint(request: Request) -> Response:
    """`GET /api/calls/{span_id}`: one LLM call, every column, with all its current scores
    (on the span, or on its whole trace), read as the UI's call page reads them."""
    span_id = request.path_params["span_id"]
    return await found_response(
        request,
        f"no LLM call with span id {span_id!r}",
        get_call,
        span_id,
        shape=_call_answer,
    )


def _call_answer(call: dict[str, Any]) -> dict[str, Any]:
    scores = call.pop("scores")
    for column in JSON_COLUMNS:
        if column in call:
            call[column] = _parsed(call[column])
    return {"call": call, "scores": scores}
