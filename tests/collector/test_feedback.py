"""`POST /api/feedback`: grades stored as human scores; a later grade replaces an earlier one."""

from __future__ import annotations

import os
import uuid

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector
from tests.ui.seed import Seeded, seed_calls


@pytest.fixture(scope="module")
def seeded(collector: RunningCollector) -> Seeded:
    return seed_calls(collector, f"fb-{uuid.uuid4().hex[:8]}", plain=2)


def post(collector: RunningCollector, body: object) -> httpx.Response:
    return httpx.post(f"{collector.http_url}/api/feedback", json=body)


def stored(collector: RunningCollector, where: str, final: bool = True) -> list[dict[str, object]]:
    return collector.query(
        "SELECT trace_id, span_id, value, label, passed, explanation, author, source"
        f" FROM assay.scores {'FINAL' if final else ''} WHERE name = 'feedback' AND {where}"
        " ORDER BY timestamp"
    )


def test_a_grade_by_span_id_finds_its_trace(collector: RunningCollector, seeded: Seeded) -> None:
    span = seeded.span_ids[0]
    response = post(collector, {"span_id": span, "value": 0, "comment": "rude", "author": "eve"})
    assert response.status_code == 200, response.text
    assert response.json()["trace_id"] == seeded.trace_ids[0]
    assert stored(collector, f"span_id = '{span}'") == [
        {
            "trace_id": seeded.trace_ids[0],
            "span_id": span,
            "value": 0.0,
            "label": "thumbs_down",
            "passed": False,
            "explanation": "rude",
            "author": "eve",
            "source": "human",
        }
    ]


def test_changing_ones_mind_replaces_the_grade(collector: RunningCollector, seeded: Seeded) -> None:
    span = seeded.span_ids[1]
    for value in (1, 0, 1):
        assert (
            post(collector, {"span_id": span, "value": value, "author": "fay"}).status_code == 200
        )
    # Three rows were written with the same replacing key; whether or not ClickHouse has
    # merged them yet, reading with FINAL sees the last one only.
    assert [r["value"] for r in stored(collector, f"span_id = '{span}'")] == [1.0]
    assert len(stored(collector, f"span_id = '{span}'", final=False)) in (1, 2, 3)


def test_a_grade_sent_before_its_call_arrived_is_replaced_by_a_later_one(
    collector: RunningCollector,
) -> None:
    # An application grades a call by its span id as soon as its user clicks, often before
    # the exporter's batch has brought the span: the trace is not known yet. A later grade by
    # the same person, once the call is stored, must replace that one, not sit beside it.
    trace, span = os.urandom(16), os.urandom(8)
    assert post(collector, {"span_id": span.hex(), "value": 1, "author": "gil"}).json() == {
        "stored": True,
        "trace_id": "",
        "span_id": span.hex(),
        "value": 1,
        "author": "gil",
    }
    attributes = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: "m"}
    call = make_span("chat m", attributes, trace_id=trace, span_id=span)
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        TraceServiceStub(channel).Export(make_request(f"fb-late-{span.hex()}", call))
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE span_id = '{span.hex()}'", 1)
    assert post(collector, {"span_id": span.hex(), "value": 0, "author": "gil"}).status_code == 200
    assert [r["value"] for r in stored(collector, f"span_id = '{span.hex()}'")] == [0.0]


def test_a_grade_of_a_whole_trace(collector: RunningCollector, seeded: Seeded) -> None:
    trace = seeded.trace_ids[2]
    assert post(collector, {"trace_id": trace, "value": "1"}).status_code == 200
    rows = stored(collector, f"trace_id = '{trace}'")
    assert [(r["span_id"], r["author"], r["value"]) for r in rows] == [("", "anonymous", 1.0)]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"value": 1}, "give span_id or trace_id"),
        ({"span_id": "abc", "value": 1}, "span_id must be 16 hexadecimal"),
        ({"trace_id": "zz" * 16, "value": 1}, "trace_id must be 32 hexadecimal"),
        ({"span_id": "0" * 16, "value": 2}, "value must be 1"),
        ({"span_id": "0" * 16, "value": True}, "value must be 1"),
        ({"span_id": "0" * 16, "value": 1, "comment": 5}, "must be strings"),
        ({"span_id": "0" * 16, "value": 1, "comment": "x" * 10_001}, "over 10000"),
        ([1, 2], "send a JSON object"),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(
    collector: RunningCollector, body: object, fragment: str
) -> None:
    response = post(collector, body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_feedback_must_be_json(collector: RunningCollector) -> None:
    response = httpx.post(f"{collector.http_url}/api/feedback", content=b"{not json")
    assert response.status_code == 415
    response = httpx.post(
        f"{collector.http_url}/api/feedback",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400 and "not JSON" in response.json()["error"]
