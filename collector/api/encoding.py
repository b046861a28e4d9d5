"""Turning query results into JSON and CSV responses."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import ipaddress
import json
import math
import uuid
from typing import Any

from starlette.responses import Response


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
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


def csv_response(columns: list[str], rows: list[tuple[Any, ...]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                json.dumps(v, default=_plain, ensure_ascii=False)
                if isinstance(v, (dict, list, tuple))
                else ("" if v is None else _plain(v) if not isinstance(v, (str, int, float)) else v)
                for v in row
            ]
        )
    return Response(out.getvalue(), 200, media_type="text/csv; charset=utf-8")


def error_response(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)
