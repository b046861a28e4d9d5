"""The UI's datasets and experiments pages (read from their tables), and adding a call to a
dataset."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from assay.collector.records.calls import get_call, records
from assay.collector.records.datasets import promote_call, promote_session, promote_trace
from assay.collector.schema import ScoreSource
from assay.collector.store.base import Store
from assay.collector.ui import session
from assay.collector.ui.pages import NotFound, page, ui_endpoint, with_store, write_store
from assay.collector.ui.render import pretty_json

MAX_ITEMS = 500


def datasets(store: Store) -> list[dict[str, Any]]:
    """Each dataset with its versions, newest first."""
    return records(
        store,
        "SELECT name, groupArray((version, created_at, item_count)) AS versions,"
        " max(created_at) AS updated, argMax(description, created_at) AS description"
        f" FROM (SELECT * FROM {store.database}.datasets FINAL ORDER BY created_at DESC)"
        " GROUP BY name ORDER BY updated DESC LIMIT 1000",
    )


def dataset(store: Store, name: str, version: str) -> dict[str, Any] | None:
    """A dataset version (the newest when `version` is empty), its versions and its items."""
    versions = records(
        store,
        "SELECT version, created_at, item_count, description"
        f" FROM {store.database}.datasets FINAL WHERE name = {{name:String}}"
        " ORDER BY created_at DESC",
        {"name": name},
    )
    if not versions:
        return None
    chosen = next((v for v in versions if v["version"] == version), None) if version else None
    chosen = chosen or versions[0]
    items = records(
        store,
        "SELECT item_id, input, expected, context, metadata, source_trace_id, source_span_id"
        f" FROM {store.database}.dataset_items FINAL"
        " WHERE dataset_name = {name:String} AND dataset_version = {version:String}"
        f" ORDER BY position, item_id LIMIT {MAX_ITEMS}",
        {"name": name, "version": chosen["version"]},
    )
    for item in items:
        for key in ("input", "expected", "context", "metadata"):
            item[key] = pretty_json(item[key]) if item[key] else ""
    runs = records(
        store,
        "SELECT experiment_id, name, started_at, status, item_count"
        f" FROM {store.database}.experiments FINAL WHERE dataset_name = {{name:String}}"
        " AND dataset_version = {version:String} ORDER BY started_at DESC LIMIT 100",
        {"name": name, "version": chosen["version"]},
    )
    return {"name": name, "version": chosen, "versions": versions, "entries": items, "runs": runs}


def experiments(store: Store) -> list[dict[str, Any]]:
    """Every run, newest first, with its mean score per evaluator."""
    runs = records(
        store,
        "SELECT experiment_id, name, dataset_name, dataset_version, git_commit, started_at,"
        " ended_at, status, item_count, repetitions, verdict"
        f" FROM {store.database}.experiments FINAL ORDER BY started_at DESC LIMIT 500",
    )
    if not runs:
        return runs
    ids = {"ids": [r["experiment_id"] for r in runs]}
    # Error scores are no value: counted apart, beside the mean of the others.
    means = records(
        store,
        "SELECT experiment_id, name, if(n = 0, NULL, avgIf(value, error = '')) AS mean,"
        " countIf(error = '') AS n, countIf(error != '') AS errors,"
        " any(direction) AS direction"
        f" FROM {store.database}.scores FINAL"
        f" WHERE source = '{ScoreSource.EXPERIMENT}'"
        " AND experiment_id IN {ids:Array(String)}"
        " GROUP BY experiment_id, name ORDER BY name",
        ids,
    )
    failed = records(
        store,
        "SELECT experiment_id, countIf(status != 'ok') AS failed"
        f" FROM {store.database}.experiment_items FINAL"
        " WHERE experiment_id IN {ids:Array(String)} GROUP BY experiment_id",
        ids,
    )
    failures = {row["experiment_id"]: row["failed"] for row in failed}
    for run in runs:
        run["means"] = [m for m in means if m["experiment_id"] == run["experiment_id"]]
        run["failed"] = failures.get(run["experiment_id"], 0)
    return runs


@ui_endpoint
async def datasets_page(request: Request) -> Response:
    return page(request, "datasets.html", datasets=await with_store(request, datasets))


@ui_endpoint
async def dataset_page(request: Request) -> Response:
    name = request.path_params["name"]
    found = await with_store(request, dataset, name, request.query_params.get("version", ""))
    if found is None:
        raise NotFound(f"no dataset named {name!r}")
    return page(request, "dataset.html", dataset=found)


@ui_endpoint
async def experiments_page(request: Request) -> Response:
    return page(request, "experiments.html", runs=await with_store(request, experiments))


@ui_endpoint
async def run_page(request: Request) -> Response:
    """One run: what ran (params, dataset version, commit), what it cost, every item."""
    from assay.collector.ui.compare import load_run

    run = await with_store(request, load_run, request.path_params["ref"])
    return page(request, "run.html", run=run)


MAX_DATASET_NAME = 200


@ui_endpoint
async def add_to_dataset(request: Request) -> Response:
    """A call becomes an item of a dataset (a new version of it), with the expected output the
    person edited; then on to that version's page."""
    span_id = request.path_params["span_id"]
    form = await request.form()
    session.check_csrf(request, form)
    name = str(form.get("dataset") or "").strip()
    if not name or len(name) > MAX_DATASET_NAME:
        raise ValueError(f"name the dataset (1 to {MAX_DATASET_NAME} characters)")
    expected = str(form.get("expected") or "")
    # The call alone, or its whole run or conversation (named by the call's ids).
    scope = str(form.get("scope") or "call")
    try:
        if scope == "call":
            created = await write_store(
                request, promote_call, name, span_id, {"expected": expected}
            )
        elif scope in ("trace", "session"):
            call = await with_store(request, get_call, span_id)
            if call is None:
                raise LookupError(f"no LLM call with span id {span_id!r}")
            key = call["trace_id" if scope == "trace" else "session_id"]
            if not key:
                raise ValueError(f"the call belongs to no {scope}")
            promote = promote_trace if scope == "trace" else promote_session
            edited = expected != str(form.get("expected_shown") or "")
            body = {"expected": expected} if edited else {}
            created = await write_store(request, promote, name, key, body)
        else:
            raise ValueError("add the call, its trace or its session")
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    query = urlencode({"version": created["version"], "added": created["id"]})
    return RedirectResponse(f"/datasets/{quote(name, safe='')}?{query}", 303)
