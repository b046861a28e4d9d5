"""Datasets through the API: store a version, list them, read one back, promote a call into one.

- `POST /api/datasets` `{name, description?, metadata?, items: [...], version?}` stores that
  version (its version is the hash of its items; a `version` sent must match it).
- `GET /api/datasets` lists datasets (their latest version); `GET /api/datasets/{name}`
  (`?version=`) returns a version with its items.
- `POST /api/datasets/{name}/items` `{"span_id": ..., "expected": optional}` promotes a stored
  LLM call: its conversation (without the system instructions, kept in metadata) becomes the
  input, its answer the expected output unless `expected` is given. `{"trace_id": ...}`
  promotes a whole run (its first call's conversation, its last answer), `{"session_id": ...}`
  a whole conversation (every run's question and answer, replayed turn by turn by an
  experiment). The dataset gets a new version holding the previous items and this one; the
  answer is the created item, with `dataset` and `version`.

Item values are stored as JSON text in `dataset_items` ("" for a missing value).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.encoding import (
    error_response,
    found_response,
    json_response,
    read_failure,
)
from assay.collector.records.datasets import (
    promote_call,
    promote_session,
    promote_trace,
    read_dataset,
    write_dataset,
)
from assay.collector.records.read_gate import ReadsBusy, stored
from assay.collector.store.base import Store, StoreError
from assay.evaluators.dataset import Dataset


def _parse_dataset(payload: Any) -> Dataset:
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValueError('send JSON: {"name": ..., "items": [{"input": ...}, ...]}')
    dataset = Dataset(
        payload.get("name") or "",
        payload["items"],
        description=str(payload.get("description") or ""),
        metadata=payload.get("metadata") or {},
    )
    claimed = payload.get("version")
    if claimed and claimed != dataset.version:
        raise ValueError(
            f"version {claimed!r} does not match the items, which hash to {dataset.version!r}"
        )
    return dataset


async def push_dataset_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    try:
        dataset = _parse_dataset(await json_body(request))
    except BadBody as exc:
        return error_response(str(exc), exc.status)
    except (ValueError, TypeError) as exc:
        return error_response(str(exc))
    try:
        await asyncio.to_thread(write_dataset, store, dataset)
    except StoreError as exc:
        return error_response(f"storing the dataset failed: {exc}", 503)
    return json_response(
        {"name": dataset.name, "version": dataset.version, "item_count": len(dataset)}, 201
    )


def _all_rows(store: Store, sql: str) -> tuple[list[str], list[Any]]:
    return store.query(sql)


async def list_datasets_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    sql = (
        # The latest version's fields in one argMax: an alias named like a column (created_at)
        # would shadow that column inside the other aggregates (ILLEGAL_AGGREGATION).
        "SELECT name, latest.1 AS version, latest.2 AS created_at, latest.3 AS item_count, "
        "latest.4 AS description, versions FROM (SELECT name, "
        "argMax((version, created_at, item_count, description), created_at) AS latest, "
        f"count() AS versions FROM {store.database}.datasets FINAL GROUP BY name) ORDER BY name"
    )
    try:
        columns, rows = await stored(request, _all_rows, sql)
    except (ReadsBusy, StoreError) as exc:
        return read_failure(exc)
    return json_response({"datasets": [dict(zip(columns, row, strict=True)) for row in rows]})


async def get_dataset_endpoint(request: Request) -> Response:
    name = request.path_params["name"]
    version = request.query_params.get("version") or None
    which = f" version {version!r}" if version else ""
    return await found_response(request, f"no dataset {name!r}{which}", read_dataset, name, version)


# What can be promoted, by the key that names it.
PROMOTE = {"span_id": promote_call, "trace_id": promote_trace, "session_id": promote_session}


async def promote_call_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    name = request.path_params["name"]
    usage = 'send JSON: {"span_id" | "trace_id" | "session_id": "...", "expected": optional}'
    try:
        body = await json_body(request)
    except BadBody as exc:
        return error_response(f"{exc}; {usage}", exc.status)
    keys = [key for key in PROMOTE if isinstance(body, dict) and key in body]
    if len(keys) != 1 or not isinstance(body[keys[0]], str):
        return error_response(usage)
    unknown = sorted(set(body) - {keys[0], "expected"})
    if unknown:
        return error_response(f"unknown key(s) {unknown}; {usage}")
    try:
        created = await asyncio.to_thread(PROMOTE[keys[0]], store, name, body[keys[0]], body)
    except LookupError as exc:
        return error_response(str(exc), 404)
    except (ValueError, TypeError) as exc:
        return error_response(str(exc))
    except StoreError as exc:
        return error_response(f"storing the item failed: {exc}", 503)
    return json_response(created, 201)
