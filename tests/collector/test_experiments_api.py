"""The experiments API: bad input is refused with the reason, retries store nothing twice."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.conftest import RunningCollector


def _run(experiment_id: str, **fields: object) -> dict[str, object]:
    return {
        "experiment_id": experiment_id,
        "name": f"api-test-{experiment_id[:6]}",
        "dataset_name": "d",
        "dataset_version": "v",
        "started_at": time.time(),
        **fields,
    }


def _items(count: int) -> dict[str, object]:
    return {
        "items": [
            {
                "item_id": f"item-{i}",
                "output": f"answer {i}",
                "started_at": time.time(),
                "duration_ms": 12.5,
                "scores": [{"name": "exact", "value": i % 2, "passed": bool(i % 2)}],
            }
            for i in range(count)
        ]
    }


def test_a_retried_item_batch_is_stored_once(collector: RunningCollector) -> None:
    experiment_id = uuid.uuid4().hex
    base = collector.http_url
    assert httpx.post(f"{base}/api/experiments", json=_run(experiment_id)).status_code == 200
    body = _items(5)
    for _ in range(2):  # the client retries when an answer is lost
        response = httpx.post(f"{base}/api/experiments/{experiment_id}/items", json=body)
        assert response.status_code == 200 and response.json() == {"items": 5, "scores": 5}
    # Without FINAL: the second insert was dropped, not merged away later.
    rows = collector.query(
        f"SELECT count() AS n FROM experiment_items WHERE experiment_id = '{experiment_id}'"
    )
    assert rows[0]["n"] == 5
    scores = collector.query(
        f"SELECT count() AS n, sum(value) AS total FROM scores WHERE experiment_id = "
        f"'{experiment_id}' AND source = 'experiment'"
    )
    assert scores[0] == {"n": 5, "total": 2.0}
    run = httpx.get(f"{base}/api/experiments/{experiment_id}").json()
    assert [item["item_id"] for item in run["items"]] == [f"item-{i}" for i in range(5)]
    assert run["items"][1]["scores"][0]["passed"] is True


def test_the_end_record_replaces_the_start_record(collector: RunningCollector) -> None:
    experiment_id = uuid.uuid4().hex
    start = _run(experiment_id)
    base = collector.http_url
    httpx.post(f"{base}/api/experiments", json=start)
    end = {**start, "status": "completed", "ended_at": time.time(), "summary": {"task": {}}}
    httpx.post(f"{base}/api/experiments", json=end)
    listed = httpx.get(f"{base}/api/experiments", params={"name": start["name"]}).json()
    assert [(r["status"], r["summary"]) for r in listed["experiments"]] == [
        ("completed", {"task": {}})
    ]


def test_bad_requests_are_refused_with_the_reason(collector: RunningCollector) -> None:
    base = collector.http_url
    missing = httpx.post(f"{base}/api/experiments", json={"name": "x"})
    assert missing.status_code == 400 and "experiment_id" in missing.json()["error"]
    bad_status = httpx.post(f"{base}/api/experiments", json=_run("abc", status="done"))
    assert bad_status.status_code == 400 and "status" in bad_status.json()["error"]
    not_json = httpx.post(
        f"{base}/api/experiments", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    unknown = httpx.post(f"{base}/api/experiments/nope/items", json=_items(1))
    assert unknown.status_code == 404 and "record it first" in unknown.json()["error"]
    experiment_id = uuid.uuid4().hex
    httpx.post(f"{base}/api/experiments", json=_run(experiment_id))
    out_of_range = _items(1)
    out_of_range["items"][0]["scores"][0]["value"] = 1.5  # type: ignore[index]
    refused = httpx.post(f"{base}/api/experiments/{experiment_id}/items", json=out_of_range)
    assert refused.status_code == 400 and "value" in refused.json()["error"]
    assert httpx.get(f"{base}/api/experiments/no-such-run").status_code == 404
    assert httpx.get(f"{base}/api/experiments", params={"limit": "x"}).status_code == 400
