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
import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.datasets import read_dataset
from assay.collector.api.encoding import error_response, json_response
from assay.collector.normalize.rows import ScoreRow, column_names, to_columns
from assay.collector.store.base import Store, StoreError

MAX_LIST = 500
# A run that can be a baseline: it completed, and no gate failed it (a run never gated, from a
# notebook, counts; one `assay eval run` failed, or never finished judging, is never the bar
# the next run is held to).
BASELINE_CONDITION = "status = 'completed' AND verdict NOT IN ('failed', 'pending')"
_ID = r"^[A-Za-z0-9_.:-]+$"


class ExperimentIn(BaseModel):
    experiment_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    dataset_name: str = ""
    dataset_version: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    evaluators: dict[str, str] = Field(default_factory=dict)
    git_commit: str = ""
    started_at: float = Field(gt=0)  # epoch seconds
    ended_at: float | None = None
    status: Literal["running", "completed", "cancelled", "failed"] = "running"
    item_count: int = Field(default=0, ge=0)
    summary: dict[str, Any] = Field(default_factory=dict)
    repetitions: int = Field(default=1, ge=1)
    # pending: a gate runs it and has not judged yet (a gate that died leaves it so)
    verdict: Literal["", "pending", "passed", "failed"] = ""
    gate: dict[str, Any] = Field(default_factory=dict)


class ScoreIn(BaseModel):
    name: str = Field(min_length=1)
    value: float = Field(ge=0.0, le=1.0)
    label: str = ""
    passed: bool | None = None
    explanation: str = ""
    evaluator_version: str = ""
    cost_usd: float | None = None
    duration_ms: float | None = None
    error: str = ""
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"


class ItemIn(BaseModel):
    item_id: str = Field(min_length=1)
    repetition: int = Field(default=0, ge=0)
    trace_id: str = ""
    span_id: str = ""
    output: str = ""
    status: Literal["ok", "error", "timeout"] = "ok"
    error: str = ""
    started_at: float = Field(gt=0)
    duration_ms: float = Field(default=0.0, ge=0.0)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = None
    model: str = ""
    scores: list[ScoreIn] = Field(default_factory=list)


class ItemsIn(BaseModel):
    items: list[ItemIn] = Field(max_length=10_000)


@dataclass(slots=True)
class ExperimentRow:
    table: ClassVar[str] = "experiments"

    experiment_id: str
    name: str
    dataset_name: str
    dataset_version: str
    params: str
    evaluators: dict[str, str]
    git_commit: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str
    item_count: int
    summary: str
    repetitions: int = 1
    verdict: str = ""
    gate: str = ""


@dataclass(slots=True)
class ExperimentItemRow:
    table: ClassVar[str] = "experiment_items"

    experiment_id: str
    item_id: str
    repetition: int
    trace_id: str
    span_id: str
    output: str
    status: str
    error: str
    started_at: dt.datetime
    duration_ms: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    model: str


def _moment(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" + (
        f" ({exc.error_count()} errors)" if exc.error_count() > 1 else ""
    )


def write_experiment(store: Store, run: ExperimentIn) -> None:
    row = ExperimentRow(
        run.experiment_id,
        run.name,
        run.dataset_name,
        run.dataset_version,
        json.dumps(run.params, sort_keys=True),
        run.evaluators,
        run.git_commit,
        # The table replaces on started_at: the end record must carry the same start.
        _moment(run.started_at),
        _moment(run.ended_at) if run.ended_at is not None else None,
        run.status,
        run.item_count,
        json.dumps(run.summary, sort_keys=True),
        run.repetitions,
        run.verdict,
        json.dumps(run.gate, sort_keys=True) if run.gate else "",
    )
    store.insert(ExperimentRow.table, to_columns([row]), column_names(ExperimentRow))


def _experiment_rows(
    store: Store, where: str, values: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    columns, rows = store.query(
        "SELECT experiment_id, name, dataset_name, dataset_version, params, evaluators, "
        "git_commit, started_at, ended_at, status, item_count, summary, repetitions, verdict, "
        "gate "
        f"FROM {store.database}.experiments FINAL {where} "
        f"ORDER BY started_at DESC LIMIT {int(limit)}",
        values,
    )
    found = []
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        record["params"] = json.loads(record["params"] or "{}")
        record["summary"] = json.loads(record["summary"] or "{}")
        record["gate"] = json.loads(record["gate"] or "{}")
        record["evaluators"] = dict(record["evaluators"])
        found.append(record)
    return found


def find_experiment(store: Store, ref: str) -> dict[str, Any] | None:
    """By experiment id, else the latest run with that name."""
    for where in ("WHERE experiment_id = {ref:String}", "WHERE name = {ref:String}"):
        rows = _experiment_rows(store, where, {"ref": ref}, 1)
        if rows:
            return rows[0]
    return None


def write_items(store: Store, experiment: dict[str, Any], items: list[ItemIn], token: str) -> int:
    experiment_id = experiment["experiment_id"]
    item_rows = [
        ExperimentItemRow(
            experiment_id,
            item.item_id,
            item.repetition,
            item.trace_id,
            item.span_id,
            item.output,
            item.status,
            item.error,
            _moment(item.started_at),
            item.duration_ms,
            item.input_tokens,
            item.output_tokens,
            item.cost_usd,
            item.model,
        )
        for item in items
    ]
    now = time.time_ns()
    score_rows = [
        ScoreRow(
            timestamp=now,
            trace_id=item.trace_id,
            span_id=item.span_id,
            name=score.name,
            value=score.value,
            label=score.label,
            passed=score.passed,
            explanation=score.explanation,
            source="experiment",
            evaluator_version=score.evaluator_version,
            experiment_id=experiment_id,
            dataset_item_id=item.item_id,
            cost_usd=score.cost_usd,
            duration_ms=score.duration_ms,
            error=score.error,
            direction=score.direction,
        )
        for item in items
        for score in item.scores
    ]
    if item_rows:
        store.insert(
            ExperimentItemRow.table,
            to_columns(item_rows),
            column_names(ExperimentItemRow),
            dedup_token=f"{token}-items",
        )
    if score_rows:
        store.insert(
            ScoreRow.table,
            to_columns(score_rows),
            column_names(ScoreRow),
            dedup_token=f"{token}-scores",
        )
    return len(score_rows)


def read_experiment(store: Store, ref: str) -> dict[str, Any] | None:
    experiment = find_experiment(store, ref)
    if experiment is None:
        return None
    db = store.database
    values = {"id": experiment["experiment_id"]}
    columns, rows = store.query(
        "SELECT item_id, repetition, trace_id, span_id, output, status, error, started_at, "
        "duration_ms, input_tokens, output_tokens, cost_usd, model "
        f"FROM {db}.experiment_items FINAL WHERE experiment_id = {{id:String}}",
        values,
    )
    runs = [dict(zip(columns, row, strict=True)) for row in rows]
    # A score belongs to the run of its item whose span it names (each repetition has one).
    by_span = {(run["item_id"], run["span_id"]): run for run in runs}
    first = {run["item_id"]: run for run in sorted(runs, key=lambda r: -r["repetition"])}
    score_columns, score_rows = store.query(
        "SELECT dataset_item_id, span_id, name, value, label, passed, explanation, "
        "evaluator_version, cost_usd, duration_ms, error, direction "
        f"FROM {db}.scores FINAL "
        "WHERE source = 'experiment' AND experiment_id = {id:String} ORDER BY name",
        values,
    )
    for row in score_rows:
        score = dict(zip(score_columns, row, strict=True))
        item_id, span_id = score.pop("dataset_item_id"), score.pop("span_id")
        run = by_span.get((item_id, span_id)) or first.get(item_id)
        if run is not None:
            run.setdefault("scores", []).append(score)
    items: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        items.setdefault(run["item_id"], []).append(run)
    dataset = read_dataset(store, experiment["dataset_name"], experiment["dataset_version"] or None)
    order: dict[str, int] = {}
    if dataset is not None:
        for position, entry in enumerate(dataset["items"]):
            order[entry["id"]] = position
            for run in items.get(entry["id"], []):
                for key in ("input", "expected", "context", "metadata"):
                    run[key] = entry[key]
    ordered = sorted(
        runs, key=lambda i: (order.get(i["item_id"], len(order)), i["item_id"], i["repetition"])
    )
    return {"experiment": experiment, "items": ordered}


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
            _experiment_rows, store, "WHERE experiment_id = {id:String}", {"id": experiment_id}, 1
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
    store: Store = request.app.state.store
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
        rows = await asyncio.to_thread(_experiment_rows, store, where, values, limit)
    except StoreError as exc:
        return error_response(f"query failed: {exc}", 503)
    return json_response({"experiments": rows})


async def get_experiment_endpoint(request: Request) -> Response:
    ref = request.path_params["ref"]
    try:
        found = await asyncio.to_thread(read_experiment, request.app.state.store, ref)
    except StoreError as exc:
        return error_response(f"query failed: {exc}", 503)
    if found is None:
        return error_response(f"no experiment with id or name {ref!r}", 404)
    return json_response(found)
