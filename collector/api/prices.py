"""`/api/prices`: the price table in force (GET), loading a newer price file (POST), and pricing
stored calls again in a time range (POST /api/prices/recompute). `assay prices` calls these."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector import price_tables
from assay.collector.api.encoding import error_response, json_response
from assay.collector.store.base import StoreError

MAX_PRICE_FILE_BYTES = 4 * 1024 * 1024


async def prices_endpoint(request: Request) -> Response:
    return json_response(price_tables.in_force().describe())


async def load_prices_endpoint(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_PRICE_FILE_BYTES:
        return error_response(f"a price file is at most {MAX_PRICE_FILE_BYTES} bytes", 413)
    try:
        raw = json.loads(body)
    except ValueError as exc:
        return error_response(f"the price file is no JSON: {exc}")
    try:
        loaded = await asyncio.to_thread(price_tables.load, request.app.state.store, raw)
    except price_tables.PriceTableError as exc:
        return error_response(str(exc))
    except StoreError as exc:
        return error_response(f"the store refused the price table: {exc}", 503)
    description = loaded.describe()
    return json_response({k: v for k, v in description.items() if k != "models"})


async def recompute_endpoint(request: Request) -> Response:
    try:
        body: Any = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("send a JSON object with since (and until)")
        since = _moment(body.get("since"), "since")
        until = _moment(body.get("until"), "until") if body.get("until") else _now()
        if until <= since:
            raise ValueError("until must come after since")
    except ValueError as exc:
        return error_response(str(exc))
    try:
        done = await asyncio.to_thread(
            price_tables.recompute, request.app.state.store, since, until
        )
    except StoreError as exc:
        return error_response(f"recomputing failed in the store: {exc}", 503)
    return json_response(asdict(done))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _moment(value: Any, name: str) -> dt.datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: give an ISO date or date-time, e.g. 2026-06-01T00:00:00Z")
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
