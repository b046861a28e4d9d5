"""Experiments through the API: record a run and its item results, list runs, read one back.

- `POST /api/experiments` records a run's metadata (sent at its start, again at its end, and
  once more with the verdict when `assay eval run` gated it).
- `POST /api/experiments/{id}/items` `{"items": [...]}` stores item results (`experiment_items`)
  and their scores (`scores`, source `experiment`); a retried request stores nothing twice.
- `GET /api/experiments` (`?name=`, `?limit=`, `?baseline=true`) lists runs, newest first;
  `baseline=true` keeps the runs that can be a baseline: completed, and not failed by a gate.
- `GET /api/experiments/{ref}` returns a run (by id, or the latest run of that name) with its
  items: output, status, latency, usage, the dataset item's input and expected output, scores.
"""

from __future__ import annotations

import asyncio
import hashlib

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.encoding import (
    error_response,
    found_response,
    json_response,
    read_failure,
)
from assay.collector.records.experiments import (
    BASELINE_CONDITION,
    ExperimentIn,
    ItemsIn,
    experiment_rows,
    read_experiment,
    write_experiment,
    write_items,
)
from assay.collector.records.read_gate import ReadsBusy, stored
from assay.collector.store.base import Store, StoreError

MAX_LIST = 500


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" + (
        f" ({exc.error_count()} errors)" if exc.error_count() > 1 else ""
    )


async def record_experiment_endpoint(request: Request) -> Response:
    try:
        run = ExperimentIn.model_validate(await json_body(request))
    except ValidationError as exc:
        return error_response(_validation_message(exc))
    except BadBody as exc:
        return error_response(str(exc), exc.status)
    try:
        await asyncio.to_thread(write_experiment, request.app.state.store, run)
    except StoreError as exc:
        return error_response(f"storing the experiment failed: {exc}", 503)
    return json_response({"experiment_id": run.experiment_id, "status": run.status})


async def add_items_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    experiment_id = request.path_params["experiment_id"]
    body = await request.body()
    try:
        items = ItemsIn.model_validate_json(body).items
    except ValidationError as exc:
        return error_response(_validation_message(exc))
    try:
        rows = await asyncio.to_thread(
            experiment_rows, store, "WHERE experiment_id = {id:String}", {"id": experiment_id}, 1
        )
        if not rows:
            return error_response(f"no experiment {experiment_id!r}: record it first", 404)
        # The same body sent again (a retry) is dropped by the store's insert deduplication.
        token = "experiment-" + hashlib.sha256(experiment_id.encode() + body).hexdigest()[:32]
        scores = await asyncio.to_thread(write_items, store, rows[0], items, token)
    except StoreError as exc:
        return error_response(f"storing the items failed: {exc}", 503)
    return json_response({"items": len(items), "scores": scores})


async def list_experiments_endpoint(request: Request) -> Response:
    name = request.query_params.get("name")
    try:
        limit = min(max(int(request.query_params.get("limit", 50)), 1), MAX_LIST)
    except ValueError:
        return error_response("limit must be an integer")
    clauses, values = [], {}
    if name:
        clauses.append("name = {name:String}")
        values["name"] = name
    if request.query_params.get("baseline") in ("1", "true"):
        clauses.append(BASELINE_CONDITION)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    try:
        rows = await stored(request, experiment_rows, where, values, limit)
    except (ReadsBusy, StoreError) as exc:
        return read_failure(exc)
    return json_response({"experiments": rows})


async def get_experiment_endpoint(request: Request) -> Response:
    ref = request.path_params["ref"]
    return await found_response(
        request, f"no experiment with id or name {ref!r}", read_experiment, ref
    )
