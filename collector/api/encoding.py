"""Turning query results into JSON and CSV responses, and one stored thing into its answer."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import ipaddress
import json
import math
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.records.read_gate import RETRY_AFTER_S, ReadsBusy, stored
from assay.collector.store.base import StoreError
from assay.collector.store.reading import ReadLimitExceeded
from assay.evaluators.formatting import iso_utc

T = TypeVar("T")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_utc(value)  # the API's times say their zone (UTC), as the UI's and CLI's do
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def json_rows(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, _finite(list(row)), strict=True)) for row in rows]


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, default=_plain, ensure_ascii=False, allow_nan=False)
    return Response(body, status, media_type="application/json")


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: numbers as they are, text with a leading quote where a spreadsheet would
    run it as a formula (a prompt can hold `=HYPERLINK(...)`)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=_plain, ensure_ascii=False)
    else:
        text = value if isinstance(value, str) else _plain(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_response(columns: list[str], rows: list[tuple[Any, ...]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_cell(name) for name in columns])
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return Response(out.getvalue(), 200, media_type="text/csv; charset=utf-8")


def error_response(
    message: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    response = json_response({"error": message}, status)
    response.headers.update(headers or {})
    return response


def read_failure(exc: ReadsBusy | StoreError) -> Response:
    """The answer to a read that did not end with rows: refused for now (503, Retry-After),
    past a limit of the reads (400, saying which), or the store failing (503)."""
    if isinstance(exc, ReadsBusy):
        return error_response(str(exc), 503, {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, ReadLimitExceeded):
        return error_response(str(exc), 400)
    return error_response(f"query failed: {exc}", 503)


async def found_response(
    request: Request,
    missing: str,
    read: Callable[..., T | None],
    *args: Any,
    shape: Callable[[T], Any] = lambda found: found,
) -> Response:
    """`read(store, *args)` through the read gate, answered as JSON (`shape`d): 404 with
    `missing` when it finds nothing, `read_failure` when it fails."""
    try:
        found = await stored(request, read, *args)
    except (ReadsBusy, StoreError) as exc:
        return read_failure(exc)
    if found is None:
        return error_response(missing, 404)
    return json_response(shape(found))
