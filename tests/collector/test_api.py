"""The REST API: health, read-only SQL (JSON and CSV) and the recent-calls list."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from assay.collector.api.query import in_user_terms
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector


@pytest.fixture(scope="module")
def seeded(collector: RunningCollector) -> str:
    """A service with three calls: two gpt-4o (one failed) and one claude."""
    service = f"api-{uuid.uuid4().hex[:8]}"
    spans = [
        make_span(attrs={sc.REQUEST_MODEL: "gpt-4o", sc.OPERATION_NAME: "chat"}),
        make_span(attrs={sc.REQUEST_MODEL: "gpt-4o", sc.OPERATION_NAME: "chat"}, error=True),
        make_span(attrs={sc.REQUEST_MODEL: "claude-sonnet-4", sc.OPERATION_NAME: "chat"}),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request(service, *spans))
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", 3)
    return service


def test_health_reports_the_store_and_pipeline(collector: RunningCollector) -> None:
    body = httpx.get(f"{collector.http_url}/api/health").json()
    assert body["status"] == "ok"
    assert body["store"] == {"kind": "embedded", "reachable": True, "reports_duplicates": True}
    assert body["pipeline"]["requests_accepted"] >= 0


def test_query_as_json_and_csv(collector: RunningCollector, seeded: str) -> None:
    sql = (
        f"SELECT model, count() AS n FROM assay.llm_calls WHERE service_name = '{seeded}' "
        "GROUP BY model ORDER BY model"
    )
    response = httpx.post(f"{collector.http_url}/api/query", json={"sql": sql})
    assert response.json()["rows"] == [
        {"model": "claude-sonnet-4", "n": 1},
        {"model": "gpt-4o", "n": 2},
    ]
    response = httpx.post(f"{collector.http_url}/api/query", json={"sql": sql, "format": "csv"})
    assert response.text.splitlines() == ["model,n", "claude-sonnet-4,1", "gpt-4o,2"]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("INSERT INTO assay.llm_calls (trace_id) VALUES ('x')", "only read queries"),
        ("DROP TABLE assay.llm_calls", "only read queries"),
        ("SELECT 1; DROP TABLE assay.llm_calls", "one statement"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file() is not allowed"),
        ("SELECT * FROM url('http://127.0.0.1:1/', 'CSV')", "url() is not allowed"),
        ("", "empty query"),
        ("SELECT no_such_column FROM assay.llm_calls", "query failed"),
    ],
)
def test_anything_but_a_read_is_refused(
    collector: RunningCollector, sql: str, fragment: str
) -> None:
    response = httpx.post(f"{collector.http_url}/api/query", json={"sql": sql})
    assert response.status_code == 400
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("sql", "expected", "absent"),
    [
        (  # a syntax error points into the person's own text
            "SELECT count( FROM assay.llm_calls",
            "ClickHouse cannot parse the query: Syntax error: failed at position 20 (assay)",
            "formatQuery",
        ),
        (  # an unknown column: said without the query as the formatter rewrote it
            "SELEC model FROM assay.llm_calls",
            "query failed: Unknown expression identifier `SELEC` (UNKNOWN_IDENTIFIER)",
            "SELEC AS model",
        ),
    ],
)
def test_errors_quote_the_users_query_not_a_rewritten_one(
    collector: RunningCollector, sql: str, expected: str, absent: str
) -> None:
    response = httpx.post(f"{collector.http_url}/api/query", json={"sql": sql})
    error = response.json()["error"]
    assert response.status_code == 400 and error.startswith(expected), error
    assert absent not in error and "DB::Exception" not in error and "In scope" not in error


def test_a_syntax_error_marks_the_place_in_the_users_text() -> None:
    error = (
        "Code: 62. DB::Exception: Syntax error: failed at position 24 (WHERE): WHERE. "
        "Expected one of: token: In scope SELECT formatQuery('SELECT é\\nFROM t WHERE WHERE')."
        " (SYNTAX_ERROR)"
    )
    assert in_user_terms(error, "SELECT é\nFROM t WHERE WHERE").splitlines() == [
        "Syntax error: failed at position 24 (WHERE): WHERE. Expected one of: token (SYNTAX_ERROR)",
        "  FROM t WHERE WHERE",
        "               ^",
    ]


def test_the_read_session_cannot_write_even_past_the_keyword_check(
    collector: RunningCollector,
) -> None:
    # Starts like a read but asks the engine to change a setting that permits writes.
    response = httpx.post(
        f"{collector.http_url}/api/query", json={"sql": "SELECT 1 SETTINGS readonly = 0"}
    )
    assert response.status_code == 400
    # ... and the writer's session is untouched: ingest still lands.
    service = f"after-{uuid.uuid4().hex[:8]}"
    httpx.post(
        f"{collector.http_url}/v1/traces",
        content=make_request(service, make_span()).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    collector.wait_for_rows(f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{service}'", 1)


def test_query_row_limit(collector: RunningCollector) -> None:
    response = httpx.post(
        f"{collector.http_url}/api/query",
        json={"sql": "SELECT number FROM system.numbers LIMIT 50", "max_rows": 10},
    )
    body = response.json()
    assert body["row_count"] == 10 and body["truncated"] is True


def test_recent_calls_filter_by_service_model_and_status(
    collector: RunningCollector, seeded: str
) -> None:
    url = f"{collector.http_url}/api/calls"
    calls = httpx.get(url, params={"service": seeded}).json()["calls"]
    assert len(calls) == 3
    assert [c["timestamp"] for c in calls] == sorted((c["timestamp"] for c in calls), reverse=True)
    assert len(httpx.get(url, params={"service": seeded, "model": "gpt-4o"}).json()["calls"]) == 2
    errors = httpx.get(url, params={"service": seeded, "status": "error"}).json()["calls"]
    assert [c["model"] for c in errors] == ["gpt-4o"]
    assert httpx.get(url, params={"service": seeded, "since": "1h"}).json()["calls"]
    assert not httpx.get(url, params={"service": seeded, "until": "2000-01-01"}).json()["calls"]
    bad = httpx.get(url, params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]
