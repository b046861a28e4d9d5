"""The UI's and the JSON API's reads are bounded (collector/api/read_gate.py): a read past a
limit gets a page, or a JSON error, that names the limit, while reads within the limits, OTLP
ingestion and the health check go on as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from playwright.sync_api import Page

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector
from tests.ui.seed import Seeded, seed_calls

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROW_LIMIT = 3  # fewer than the seeded calls, more than a call page's queries answer


@pytest.fixture(scope="module")
def few_rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("few-rows")
    running = start_collector(
        base / "data", base / "log", ASSAY_READ_MAX_RESULT_ROWS=str(ROW_LIMIT)
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeded_few(few_rows: RunningCollector) -> Seeded:
    return seed_calls(few_rows, f"bounded-{uuid.uuid4().hex[:8]}")


def test_a_page_past_the_row_limit_says_so_and_a_call_page_is_unaffected(
    page: Page, few_rows: RunningCollector, seeded_few: Seeded
) -> None:
    response = page.goto(f"{few_rows.http_url}/calls?service={seeded_few.service}")
    assert response is not None and response.status == 400
    text = page.inner_text("main")
    assert "read_max_result_rows" in text and f"over {ROW_LIMIT} rows" in text
    assert "DB::Exception" not in text
    # One call, its two-span trace, its neighbours: every read within the limit.
    response = page.goto(f"{few_rows.http_url}/calls/{seeded_few.span_ids[0]}")
    assert response is not None and response.status == 200
    assert "Where is my order" in page.inner_text("main")


def test_the_api_answers_a_read_past_the_row_limit_with_a_json_error(
    few_rows: RunningCollector, seeded_few: Seeded
) -> None:
    url = f"{few_rows.http_url}/api/calls"
    refused = httpx.get(url, params={"service": seeded_few.service, "limit": str(ROW_LIMIT + 1)})
    assert refused.status_code == 400
    assert "read_max_result_rows" in refused.json()["error"]
    answered = httpx.get(url, params={"service": seeded_few.service, "limit": str(ROW_LIMIT)})
    assert answered.status_code == 200, answered.text
    assert len(answered.json()["calls"]) == ROW_LIMIT
    trace = httpx.get(f"{few_rows.http_url}/api/traces/{seeded_few.trace_ids[0]}")
    assert trace.status_code == 200 and len(trace.json()["spans"]) == 2


def test_reads_past_a_limit_leave_ingestion_and_health_alone(
    few_rows: RunningCollector, seeded_few: Seeded
) -> None:
    for _ in range(5):
        assert (
            httpx.get(f"{few_rows.http_url}/api/calls", params={"limit": "50"}).status_code == 400
        )
    assert httpx.get(f"{few_rows.http_url}/api/health").json()["status"] == "ok"
    service = f"after-limits-{uuid.uuid4().hex[:8]}"
    span = make_span("chat gpt-4o", {sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-4o"})
    with grpc.insecure_channel(f"127.0.0.1:{few_rows.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            make_request(service, span), timeout=30
        )
    # Read through /api/query, whose limits are its own.
    few_rows.wait_for_rows(
        f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )


FILL = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from assay.collector.store.embedded import EmbeddedStore
    from bench.ui_paging import fill
    store = EmbeddedStore(Path(sys.argv[2]), "assay")
    store.migrate()
    fill(store, int(sys.argv[3]))
    store.close()
    """
)


@pytest.fixture(scope="module")
def slow_reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector whose reads have a millisecond, over 200,000 calls (the synthetic calls of
    bench/ui_paging.py): a search through their text takes far longer. Filled in a process of
    its own, since chDB opens one folder per process."""
    base = tmp_path_factory.mktemp("slow-reads")
    subprocess.run(
        [sys.executable, "-c", FILL, str(ROOT), str(base / "data"), "200000"],
        check=True,
        timeout=300,
    )
    running = start_collector(base / "data", base / "log", ASSAY_READ_TIMEOUT_S="0.001")
    yield running
    running.stop()


def test_a_search_past_the_time_limit_says_so_on_the_page(
    page: Page, slow_reads: RunningCollector
) -> None:
    response = page.goto(f"{slow_reads.http_url}/calls?text=no+call+holds+this")
    assert response is not None and response.status == 400
    text = page.inner_text("main")
    assert "read_timeout_s" in text and "narrow it" in text
    assert httpx.get(f"{slow_reads.http_url}/api/health").status_code == 200
