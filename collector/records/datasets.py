"""Dataset versions in the store: write one, read one back, promote a stored call, a whole run
or a whole conversation into one.

Item values are stored as JSON text in `dataset_items` ("" for a missing value). A promoted
call's conversation (without the system instructions, kept in metadata) becomes the input, its
answer the expected output unless one is given; the dataset gets a new version holding the
previous items and this one."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from assay.collector.schema import CALL_PROMOTE_COLUMNS, DatasetItemRow, DatasetRow
from assay.collector.store.base import Store
from assay.evaluators.base import EvalInput
from assay.evaluators.dataset import Dataset, DatasetItem, canonical_json


def _text(value: Any) -> str:
    return "" if value is None else canonical_json(value)


def _value(text: str) -> Any:
    return json.loads(text) if text else None


def write_dataset(store: Store, dataset: Dataset) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    version = dataset.version
    items = [
        DatasetItemRow(
            dataset.name,
            version,
            item.id,
            _text(item.input),
            _text(item.expected),
            _text(item.context),
            canonical_json(dict(item.metadata)),
            item.source_trace_id,
            item.source_span_id,
            now,
            position,
        )
        for position, item in enumerate(dataset.items)
    ]
    store.insert_rows(items)
    # The dataset row last: a version is listed only once its items are stored.
    row = DatasetRow(
        dataset.name,
        version,
        now,
        dataset.description,
        len(dataset.items),
        canonical_json(dataset.metadata),
    )
    store.insert_rows([row])


def read_dataset(store: Store, name: str, version: str | None) -> dict[str, Any] | None:
    """The version asked for, else the one stored last; None when there is none."""
    db = store.database
    where = "name = {name:String}" + (" AND version = {version:String}" if version else "")
    _, rows = store.query(
        f"SELECT version, created_at, description, metadata FROM {db}.datasets FINAL "
        f"WHERE {where} ORDER BY created_at DESC LIMIT 1",
        {"name": name, "version": version or ""},
    )
    if not rows:
        return None
    found_version, created_at, description, metadata = rows[0]
    _, item_rows = store.query(
        "SELECT item_id, input, expected, context, metadata, source_trace_id, source_span_id "
        f"FROM {db}.dataset_items FINAL WHERE dataset_name = {{name:String}} "
        "AND dataset_version = {version:String} ORDER BY position, item_id",
        {"name": name, "version": found_version},
    )
    items = []
    for item_id, input_, expected, context, item_meta, trace_id, span_id in item_rows:
        item: dict[str, Any] = {
            "id": item_id,
            "input": _value(input_),
            "expected": _value(expected),
            "context": _value(context),
            "metadata": _value(item_meta) or {},
        }
        if trace_id or span_id:
            item["source_trace_id"], item["source_span_id"] = trace_id, span_id
        items.append(item)
    return {
        "name": name,
        "version": found_version,
        "created_at": created_at,
        "description": description,
        "metadata": _value(metadata) or {},
        "items": items,
    }


def _call_item(call: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """A stored call's conversation without the system instructions, its answer, and its
    metadata (the system instructions among it)."""
    seen = EvalInput.from_llm_call(call)
    messages = seen.input if isinstance(seen.input, list) else []
    system = "\n".join(m["content"] for m in messages if m.get("role") == "system")
    metadata = {
        key: call[key] for key in ("model", "service_name", "prompt_name", "prompt_version")
    }
    if system:
        metadata["system_prompt"] = system
    metadata = {key: value for key, value in metadata.items() if value}
    return [m for m in messages if m.get("role") != "system"], seen.output, metadata


def _calls(store: Store, where: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    _, rows = store.query(
        f"SELECT {', '.join(CALL_PROMOTE_COLUMNS)} FROM {store.database}.llm_calls FINAL "
        f"WHERE {where} ORDER BY timestamp, span_id",
        parameters,
    )
    return [dict(zip(CALL_PROMOTE_COLUMNS, row, strict=True)) for row in rows]


def promote_call(store: Store, name: str, span_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add the call with `span_id` to dataset `name` as a new version; the created item."""
    calls = _calls(store, "span_id = {span_id:String}", {"span_id": span_id})
    if not calls:
        raise LookupError(
            f"no LLM call with span id {span_id!r} (a call is stored within seconds of "
            "arriving; check the id or retry)"
        )
    call = calls[0]
    messages, answer, metadata = _call_item(call)
    return _add_item(
        store,
        name,
        {
            "input": messages,
            "expected": body.get("expected", answer),
            "metadata": metadata,
            "source_trace_id": call["trace_id"],
            "source_span_id": call["span_id"],
        },
    )


def promote_trace(store: Store, name: str, trace_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add a whole run to dataset `name`: the conversation of its first LLM call (the goal) is
    the input, its last call's answer the expected output unless one is given."""
    calls = _calls(store, "trace_id = {trace_id:String}", {"trace_id": trace_id})
    if not calls:
        raise LookupError(f"no LLM call in trace {trace_id!r} (check the id, or retry shortly)")
    messages, _, metadata = _call_item(calls[0])
    _, answer, _ = _call_item(calls[-1])
    return _add_item(
        store,
        name,
        {
            "input": messages,
            "expected": body.get("expected", answer),
            "metadata": {**metadata, "level": "trace", "llm_calls": len(calls)},
            "source_trace_id": trace_id,
        },
    )


def promote_session(
    store: Store, name: str, session_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Add a whole conversation to dataset `name`: each run's question and answer in order,
    ending with the last question, is the input; the last answer the expected output unless one
    is given. The item is marked for replay turn by turn (`metadata.replay = "turns"`): an
    experiment asks the task each question in turn, with the task's own earlier answers."""
    calls = _calls(store, "session_id = {session_id:String}", {"session_id": session_id})
    if not calls:
        raise LookupError(f"no LLM call in session {session_id!r} (check the id, or retry)")
    runs: dict[str, list[dict[str, Any]]] = {}
    for call in calls:  # in time order: runs in the order they started
        runs.setdefault(call["trace_id"], []).append(call)
    conversation: list[dict[str, Any]] = []
    answer = ""
    for run in runs.values():
        messages, _, _ = _call_item(run[0])
        _, answer, _ = _call_item(run[-1])
        question = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if question is not None:
            conversation += [question, {"role": "assistant", "content": answer}]
    _, _, metadata = _call_item(calls[0])
    return _add_item(
        store,
        name,
        {
            "input": conversation[:-1],
            "expected": body.get("expected", answer),
            "metadata": {
                **metadata,
                "level": "session",
                "session_id": session_id,
                "turns": len(runs),
                "replay": "turns",
            },
            "source_trace_id": calls[-1]["trace_id"],
        },
    )


def _add_item(store: Store, name: str, item: dict[str, Any]) -> dict[str, Any]:
    current = read_dataset(store, name, None)
    previous = list(current["items"]) if current else []
    new = Dataset(name, [item]).items[0]
    # Promoting a call again (or one with the same conversation) updates that item in place.
    items = [i for i in previous if i["id"] != new.id] + [new.to_dict()]
    dataset = Dataset(
        name,
        items,
        description=current["description"] if current else "",
        metadata=current["metadata"] if current else {},
    )
    write_dataset(store, dataset)
    created: DatasetItem = dataset[new.id]
    return {**created.to_dict(), "dataset": name, "version": dataset.version}
