"""`POST /api/query` reads Assay's tables and nothing else: other databases, files, URLs and
writes are refused by what ClickHouse's parser finds in the query, with a 400 naming it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from assay.collector.api.query_scope import OutOfScope, QueryScope
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector


def _post(collector: RunningCollector, sql: str) -> httpx.Response:
    return httpx.post(f"{collector.http_url}/api/query", json={"sql": sql}, timeout=60)


def _refusal(collector: RunningCollector, sql: str) -> str:
    response = _post(collector, sql)
    assert response.status_code == 400, response.text
    return str(response.json()["error"])


@pytest.fixture(scope="module")
def seeded(collector: RunningCollector) -> str:
    """A service with two LLM calls in one trace."""
    service = f"scope-{uuid.uuid4().hex[:8]}"
    trace_id = uuid.uuid4().bytes
    spans = [
        make_span(trace_id=trace_id, attrs={sc.REQUEST_MODEL: "gpt-4o", sc.OPERATION_NAME: "chat"}),
        make_span(trace_id=trace_id, attrs={sc.REQUEST_MODEL: "o3", sc.OPERATION_NAME: "chat"}),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request(service, *spans))
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", 2)
    return service


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT model, count() AS n FROM assay.llm_calls WHERE service_name = '{s}' GROUP BY model",
        "SELECT model, count() AS n FROM llm_calls WHERE service_name = '{s}' GROUP BY model",
        "WITH mine AS (SELECT * FROM assay.llm_calls WHERE service_name = '{s}') "
        "SELECT model, count() AS n FROM mine GROUP BY model",
        "SELECT model, n FROM (SELECT model, count() AS n FROM assay.llm_calls "
        "WHERE service_name = '{s}' GROUP BY model)",
        "SELECT c.model AS model, count() AS n FROM assay.llm_calls AS c "
        "INNER JOIN assay.otel_traces AS t ON c.span_id = t.SpanId "
        "WHERE c.service_name = '{s}' AND c.trace_id IN "
        "(SELECT TraceId FROM assay.otel_traces WHERE ServiceName = '{s}') GROUP BY model",
        "SELECT model, 1 AS n FROM assay.llm_calls WHERE service_name = '{s}' AND model = 'o3' "
        "UNION ALL SELECT model, 1 AS n FROM assay.llm_calls "
        "WHERE service_name = '{s}' AND model = 'gpt-4o'",
    ],
    ids=["qualified", "unqualified", "cte", "subquery", "join-and-in", "union"],
)
def test_reads_of_assay_tables_still_work(
    collector: RunningCollector, seeded: str, sql: str
) -> None:
    response = _post(collector, sql.format(s=seeded))
    assert response.status_code == 200, response.text
    rows = sorted((r["model"], r["n"]) for r in response.json()["rows"])
    assert rows == [("gpt-4o", 1), ("o3", 1)]


@pytest.mark.parametrize(
    ("sql", "column", "expected"),
    [
        ("SHOW TABLES FROM assay", "name", "llm_calls"),
        ("SHOW TABLES", "name", "llm_calls"),
        ("DESCRIBE assay.llm_calls", "name", "input_messages"),
        ("DESC TABLE llm_calls", "name", "cost_usd"),
        ("EXISTS TABLE assay.llm_calls", "result", 1),
        ("SELECT number FROM numbers(3)", "number", 2),
        ("SELECT number FROM system.numbers LIMIT 3", "number", 2),
        ("SELECT dummy FROM system.one", "dummy", 0),
        ("SELECT dummy IN (dummy, 1) AS found FROM system.one", "found", 1),
        ("SELECT name FROM system.functions WHERE name = 'uniqExact'", "name", "uniqExact"),
    ],
)
def test_schema_questions_and_generators_are_answered(
    collector: RunningCollector, sql: str, column: str, expected: object
) -> None:
    response = _post(collector, sql)
    assert response.status_code == 200, response.text
    assert expected in [row[column] for row in response.json()["rows"]]


def test_explain_and_show_create_of_assay_tables(collector: RunningCollector) -> None:
    for sql in (
        "EXPLAIN SELECT count() FROM assay.llm_calls",
        "EXPLAIN indexes = 1 SELECT count() FROM assay.llm_calls WHERE trace_id = 'x'",
    ):
        response = _post(collector, sql)
        assert response.status_code == 200, response.text
    response = _post(collector, "SHOW CREATE TABLE assay.llm_calls")
    assert response.status_code == 200 and "llm_calls" in response.text


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        # Other databases, whichever way the table is named.
        ("SELECT * FROM system.tables", "table system.tables is not allowed"),
        ("SELECT name FROM system.columns", "SHOW TABLES or DESCRIBE"),
        ("SELECT query FROM system.query_log", "table system.query_log is not allowed"),
        ("SELECT * FROM default.secrets", "table default.secrets is not allowed"),
        ("SELECT * FROM system.processes", "table system.processes is not allowed"),
        (
            "WITH t AS (SELECT name FROM system.databases) SELECT * FROM t",
            "system.databases is not allowed",
        ),
        (
            "SELECT 1 FROM assay.llm_calls WHERE trace_id IN system.tables",
            "system.tables is not allowed",
        ),
        (
            "SELECT * FROM assay.llm_calls AS c JOIN system.disks AS d ON 1",
            "system.disks is not allowed",
        ),
        ("DESCRIBE system.tables", "system.tables is not allowed"),
        ("EXPLAIN SELECT * FROM system.tables", "system.tables is not allowed"),
        ("SHOW CREATE TABLE system.tables", "system.tables is not allowed"),
        ("SHOW TABLES FROM system", "SHOW TABLES FROM system is not allowed"),
        ("SHOW DATABASES", "SHOW DATABASES is not allowed"),
        ("SHOW PROCESSLIST", "SHOW PROCESSLIST is not allowed"),
        # Files, URLs and other servers, also past the keyword check (backquoted names).
        ("SELECT `file`('/etc/hostname')", "function file() is not allowed"),
        (
            "SELECT * FROM `url`('http://127.0.0.1:9/x', 'CSV', 'a String')",
            "table function url() is not allowed",
        ),
        (
            "SELECT * FROM `remote`('127.0.0.1:9000', 'system', 'one')",
            "table function remote() is not allowed",
        ),
        ("SELECT * FROM `merge`('system', '.*')", "table function merge() is not allowed"),
        ("SELECT 1 IN `s3`('http://127.0.0.1:9/x')", "s3() is not allowed"),
        ("SELECT dictGet('other.dict', 'value', 1)", "function dictGet() is not allowed"),
        ("SELECT joinGet('other.join', 'value', 1)", "function joinGet() is not allowed"),
    ],
)
def test_what_reaches_outside_assay_is_refused_by_name(
    collector: RunningCollector, sql: str, fragment: str
) -> None:
    assert fragment in _refusal(collector, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '--'; SELECT name FROM system.databases",
        "SELECT '/*'; SELECT name FROM system.databases; SELECT '*/'",
        "SELECT $$'$$; SELECT name FROM system.databases",
        "SELECT 1; SELECT name FROM system.databases -- ;",
        "SELECT '--'; USE system; SELECT 1",
        "SELECT 1;; SELECT 2",
    ],
)
def test_a_second_statement_is_refused_wherever_it_hides(
    collector: RunningCollector, sql: str
) -> None:
    """ClickHouse's parser splits the text: a `;` in a literal or comment is not a split, and a
    split hidden behind a quote or comment mark is still one."""
    assert "one statement per request" in _refusal(collector, sql)
    # Nothing ran: the reader still reads Assay's tables by their plain names.
    assert _post(collector, "SELECT count() AS n FROM llm_calls").status_code == 200


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("SELECT ';' AS v", ";"),
        ("SELECT '--' AS v", "--"),
        (
            "SELECT $$; SELECT name FROM system.databases$$ AS v",
            "; SELECT name FROM system.databases",
        ),
        ("SELECT 'a' AS v -- ; SELECT 2", "a"),
        ("SELECT /* ; */ 'b' AS v;", "b"),
        ("select 'c' as v ;  -- trailing", "c"),
    ],
)
def test_semicolons_in_literals_and_comments_are_one_statement(
    collector: RunningCollector, sql: str, value: str
) -> None:
    response = _post(collector, sql)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [{"v": value}]


def test_each_request_gets_a_fresh_session(collector: RunningCollector) -> None:
    """Whatever one request leaves in a session, the next starts clean: the database is
    Assay's and the limits are the collector's."""
    for _ in range(3):
        _post(collector, "USE system")  # refused, and would not outlive its request anyway
        row = _post(
            collector,
            "SELECT currentDatabase() AS db, getSetting('readonly') AS ro, "
            "getSetting('max_threads') AS threads",
        ).json()["rows"][0]
        assert row == {"db": "assay", "ro": 1, "threads": 1}


def test_into_outfile_writes_nothing(collector: RunningCollector, tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    error = _refusal(collector, f"SELECT 1 INTO OUTFILE '{target}'")
    assert "INTO OUTFILE is not allowed" in error
    assert not target.exists()


def test_refusals_leave_the_collector_serving(collector: RunningCollector) -> None:
    for sql in ("SELECT * FROM system.tables", "SELECT `file`('/etc/passwd')", "SELEC 1"):
        assert _post(collector, sql).status_code == 400
    assert _post(collector, "SELECT 1 AS one").json()["rows"] == [{"one": 1}]
    assert httpx.get(f"{collector.http_url}/api/health").status_code == 200


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector whose queries may run for one second and return at most 5 rows."""
    base = tmp_path_factory.mktemp("impatient")
    running = start_collector(
        base / "data", base / "log", ASSAY_QUERY_TIMEOUT_S="1", ASSAY_QUERY_MAX_ROWS="5"
    )
    yield running
    running.stop()


@pytest.mark.integration
def test_time_and_row_limits_hold(impatient: RunningCollector) -> None:
    started = time.monotonic()
    response = _post(impatient, "SELECT count() FROM system.numbers WHERE number % 7 = 8")
    assert response.status_code == 400 and "query failed" in response.json()["error"]
    assert time.monotonic() - started < 15

    body = httpx.post(
        f"{impatient.http_url}/api/query",
        json={"sql": "SELECT number FROM numbers(100)", "max_rows": 1000},
    ).json()
    assert body["row_count"] == 5 and body["truncated"] is True


def test_a_settings_clause_is_refused_where_the_session_would_take_it(
    embedded_store: EmbeddedStore,
) -> None:
    """A server's reader is readonly=2, which lets a query set max_execution_time itself; the
    check refuses the clause (the writer session here accepts settings, as such a reader does)."""

    def run(sql: str) -> list[str]:
        return [str(row[0]) for row in embedded_store.query(sql)[1]]

    scope = QueryScope("assay")
    scope.check("SELECT count() FROM assay.llm_calls", ["SELECT"], run)
    scope.check("EXPLAIN indexes = 1 SELECT 1 FROM assay.llm_calls", ["EXPLAIN"], run)
    for sql in (
        "SELECT count() FROM assay.llm_calls SETTINGS max_execution_time = 3600",
        "SELECT 1 SETTINGS max_result_rows = 0",
        "EXPLAIN indexes = 1 SELECT 1 FROM assay.llm_calls SETTINGS max_threads = 64",
        "DESCRIBE assay.llm_calls SETTINGS max_threads = 64",
    ):
        with pytest.raises(OutOfScope, match="SETTINGS clause is not allowed"):
            scope.check(sql, sql.split()[:3], run)
