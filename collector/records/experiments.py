"""Experiment runs in the store: the checked shapes a run and its items arrive in, writing
them (item scores with source `experiment`), and reading runs back with their items."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import fields
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from assay.collector.records.datasets import read_dataset
from assay.collector.schema import ExperimentItemRow, ExperimentRow, ScoreRow, ScoreSource
from assay.collector.store.base import Store
from assay.evaluators.base import Score

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


def _named(score: Score) -> Score:
    if not score.name:
        raise ValueError("a score needs its evaluator's name")
    return score


# A score as sent: the evaluators' own Score, checked by it (value in [0, 1], direction).
ScoreIn = Annotated[Score, AfterValidator(_named)]


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
    # None from a client that does not count them (before migration 020): "not counted".
    unpriced_calls: int | None = Field(default=None, ge=0)
    unpriced_failed: int | None = Field(default=None, ge=0)
    scores: list[ScoreIn] = Field(default_factory=list)


class ItemsIn(BaseModel):
    items: list[ItemIn] = Field(max_length=10_000)


def _moment(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


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
    store.insert_rows([row])


def experiment_rows(
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
        rows = experiment_rows(store, where, {"ref": ref}, 1)
        if rows:
            return rows[0]
    return None


# The item columns an ItemIn carries as they are stored (the rest are set by write_items).
_ITEM_COLUMNS_AS_SENT = {f.name for f in fields(ExperimentItemRow)} - {
    "experiment_id",
    "started_at",
}


def write_items(store: Store, experiment: dict[str, Any], items: list[ItemIn], token: str) -> int:
    experiment_id = experiment["experiment_id"]
    item_rows = [
        ExperimentItemRow(
            experiment_id=experiment_id,
            started_at=_moment(item.started_at),
            **item.model_dump(include=_ITEM_COLUMNS_AS_SENT),
        )
        for item in items
    ]
    now = time.time_ns()
    score_rows = [
        ScoreRow.from_score(
            score,
            trace_id=item.trace_id,
            span_id=item.span_id,
            source=ScoreSource.EXPERIMENT,
            experiment_id=experiment_id,
            dataset_item_id=item.item_id,
            timestamp=now,
        )
        for item in items
        for score in item.scores
    ]
    store.insert_rows(item_rows, dedup_token=f"{token}-items")
    store.insert_rows(score_rows, dedup_token=f"{token}-scores")
    return len(score_rows)


def read_experiment(store: Store, ref: str) -> dict[str, Any] | None:
    experiment = find_experiment(store, ref)
    if experiment is None:
        return None
    db = store.database
    values = {"id": experiment["experiment_id"]}
    columns, rows = store.query(
        "SELECT item_id, repetition, trace_id, span_id, output, status, error, started_at, "
        "duration_ms, input_tokens, output_tokens, cost_usd, model, unpriced_calls, "
        "unpriced_failed "
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
        f"WHERE source = '{ScoreSource.EXPERIMENT}' AND experiment_id = {{id:String}} "
        "ORDER BY name",
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
