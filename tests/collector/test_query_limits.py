"""People's queries cannot take what ingestion needs: each runs on a fresh session whose time,
memory and thread limits ClickHouse enforces, and only a few run at once, on threads of their
own, so slow queries stall neither OTLP, nor health checks, nor the UI."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from assay.collector.store.base import StoreError
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.reading import QueryLimits
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

LIMITS = QueryLimits(
    timeout_s=10, max_rows=100, max_memory_bytes=2**28, max_threads=1, max_result_bytes=2**20
)
SLOW = "SELECT count() AS n FROM numbers(1000000000000) WHERE sipHash64(number) % 7 = 8"
CALL = {sc.REQUEST_MODEL: "gpt-4o", sc.OPERATION_NAME: "chat"}
HUNGRY = "SELECT length(groupArray(number)) AS n FROM numbers(200000000)"


def test_a_session_leaves_nothing_behind(embedded_store: EmbeddedStore) -> None:
    with embedded_store.read_session(LIMITS) as session:
        session.query("USE system")  # readonly sessions may switch databases...
        assert session.query("SELECT currentDatabase()")[1] == [("system",)]
        with pytest.raises(StoreError, match="readonly"):
            session.query("SET max_threads = 8")  # ...but change no setting
    with embedded_store.read_session(LIMITS) as session:  # ...and the next session is new
        assert session.query("SELECT currentDatabase(), getSetting('max_threads')")[1] == [
            ("assay", 1)
        ]


def _engine_query_threads() -> dict[str, int]:
    """This process's ClickHouse query-executor threads (chDB runs in it): name → nice value."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith("Query"):
            found[f"{name}/{task.name}"] = int(fields[16])  # stat field 19: nice
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_the_engine_runs_a_query_at_the_lowest_cpu_priority(
    embedded_store: EmbeddedStore,
) -> None:
    """Not only the thread that sends the query: the engine's own executor threads, which do
    the work, run at nice 19, so ingestion gets the CPU first."""
    seen: dict[str, int] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with embedded_store.read_session(replace(LIMITS, timeout_s=2)) as session:
                session.query(SLOW)
        except StoreError as exc:  # the time limit ends it
            failure.append(exc)

    query = threading.Thread(target=run)
    query.start()
    while query.is_alive():
        seen |= _engine_query_threads()
        query.join(0.05)
    assert failure and "Timeout exceeded" in str(failure[0])
    assert seen, "no query-executor thread was seen while the query ran"
    assert set(seen.values()) == {19}, seen


def test_a_select_reads_only_the_rows_asked_for(embedded_store: EmbeddedStore) -> None:
    with embedded_store.read_session(LIMITS) as session:
        columns, rows = session.select("SELECT number FROM numbers(1000000000000)", 3)
    assert columns == ["number"] and rows == [(0,), (1,), (2,)]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector whose queries may each take 15 s and 256 MiB, two at a time."""
    base = tmp_path_factory.mktemp("limited")
    running = start_collector(
        base / "data",
        base / "log",
        ASSAY_QUERY_TIMEOUT_S="15",
        ASSAY_QUERY_MAX_MEMORY_BYTES=str(256 * 2**20),
        ASSAY_QUERY_CONCURRENCY="2",
    )
    yield running
    running.stop()


def _query(collector: RunningCollector, sql: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{collector.http_url}/api/query", json={"sql": sql}, timeout=timeout)


@pytest.mark.integration
def test_a_query_past_its_memory_limit_fails_and_the_collector_stays_small(
    limited: RunningCollector,
) -> None:
    process = psutil.Process(limited.process.pid)
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = _query(limited, HUNGRY)
    finally:
        done.set()
        watcher.join()
    assert response.status_code == 400
    assert "memory limit" in response.json()["error"].lower()
    # Unlimited, the query takes well over a GiB; the limit keeps it near 256 MiB.
    assert peak - before < 768 * 2**20, f"RSS grew by {(peak - before) / 2**20:.0f} MiB"
    assert _query(limited, "SELECT 1 AS one").json()["rows"] == [{"one": 1}]


@pytest.mark.integration
def test_slow_queries_stall_neither_ingestion_nor_health_nor_the_ui(
    limited: RunningCollector,
) -> None:
    """Two queries that run until their time limit take both slots; while they run, a third
    is refused at once (429), and OTLP exports, health checks and UI pages are answered."""
    outcomes: list[httpx.Response] = []

    def run_slow() -> None:
        while (response := _query(limited, SLOW)).status_code == 429:
            threading.Event().wait(0.05)  # the probe below held a slot for a moment
        outcomes.append(response)

    slow = [threading.Thread(target=run_slow) for _ in "ab"]
    for thread in slow:
        thread.start()
    try:
        # Until both hold a slot: then a third query is turned away.
        for _ in range(100):
            third = _query(limited, "SELECT 1 AS one", timeout=30)
            if third.status_code == 429:
                break
            threading.Event().wait(0.1)
        assert third.status_code == 429, (third.text, [o.text for o in outcomes])
        assert third.headers["retry-after"] == "1"
        assert "query_concurrency" in third.json()["error"]

        service = f"busy-{uuid.uuid4().hex[:8]}"
        with grpc.insecure_channel(f"127.0.0.1:{limited.grpc_port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            for _ in range(5):
                stub.Export(make_request(service, make_span(attrs=CALL)), timeout=30)
        for _ in range(5):
            assert httpx.get(f"{limited.http_url}/api/health", timeout=30).status_code == 200
        assert httpx.get(f"{limited.http_url}/calls", timeout=30).status_code == 200
        # The exports are stored, too, while the queries run.
        rows = httpx.get(
            f"{limited.http_url}/api/calls", params={"service": service}, timeout=30
        ).json()["calls"]
        for _ in range(100):
            if len(rows) == 5:
                break
            threading.Event().wait(0.1)
            rows = httpx.get(
                f"{limited.http_url}/api/calls", params={"service": service}, timeout=30
            ).json()["calls"]
        assert len(rows) == 5
        # All of that happened while both slow queries were still running.
        assert all(thread.is_alive() for thread in slow)
    finally:
        for thread in slow:
            thread.join()
    assert [r.status_code for r in outcomes] == [400, 400]
    assert all("Timeout exceeded" in r.json()["error"] for r in outcomes)
    assert _query(limited, "SELECT 1 AS one").status_code == 200  # the slots are free again
