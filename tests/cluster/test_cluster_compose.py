"""docker-compose.cluster.yml end to end: traffic through the balancer while one collector and
one ClickHouse replica stop; every acknowledged span is stored exactly once.

Needs Docker (with compose); skipped cleanly without it. Takes a few minutes: images are built
and pulled, and the cluster elects its Keeper leader before the collectors start.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.collector.agent_traces import genai_run
from tests.collector.otlp_builders import make_request
from tests.docker_engine import require_docker
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ["docker", "compose", "-f", str(ROOT / "docker-compose.cluster.yml")]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# The stack has no default passwords; this run's are its own.
PASSWORDS = {
    name: uuid.uuid4().hex
    for name in ("CLICKHOUSE_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
}


def compose(*args: str, timeout: float = 900) -> None:
    subprocess.run(
        [*COMPOSE, *args],
        cwd=ROOT,
        check=True,
        timeout=timeout,
        env={**os.environ, **PASSWORDS},
    )


def clickhouse(sql: str) -> str:
    response = httpx.post(
        "http://127.0.0.1:8123/",
        content=sql,
        auth=("default", PASSWORDS["CLICKHOUSE_PASSWORD"]),
        timeout=60,
    )
    response.raise_for_status()
    return response.text.strip()


@pytest.fixture
def cluster() -> Iterator[None]:
    require_docker("the ClickHouse cluster compose test")
    compose("up", "-d", "--build", "--wait")
    try:
        yield None
    finally:
        compose("down", "-v", timeout=300)


def test_a_collector_and_a_replica_stop_mid_stream(cluster: None) -> None:
    batch = Batch(f"cluster-{uuid.uuid4().hex[:8]}", requests=400, spans=10)
    log = SendLog()
    halfway = threading.Event()
    sender = threading.Thread(
        target=send,
        args=("127.0.0.1:4317", batch, list(range(batch.requests)), log),
        kwargs={"on_ack": lambda i: halfway.set() if i == batch.requests // 2 else None},
    )
    sender.start()
    assert halfway.wait(300)
    compose("stop", "collector1", "ch2")
    sender.join(600)
    # Requests refused while the balancer noticed are sent again, as an exporter would.
    missing = [i for i in range(batch.requests) if i not in log.acked]
    send("127.0.0.1:4317", batch, missing, log)
    assert len(log.acked) == batch.requests

    acked = {span for i in log.acked for span in batch.span_ids[i]}
    count_sql = (
        "SELECT uniqExact(SpanId), count() FROM assay.otel_traces FINAL "
        f"WHERE ServiceName = '{batch.service}' FORMAT TSV"
    )
    deadline = time.monotonic() + 300
    stored = ""
    while time.monotonic() < deadline:
        stored = clickhouse(count_sql)
        if stored == f"{len(acked)}\t{len(acked)}":
            break
        time.sleep(2)
    assert stored == f"{len(acked)}\t{len(acked)}"
    compose("start", "ch2")  # the replica catches up from the other one
    raw = clickhouse(
        f"SELECT count() FROM assay.otel_traces WHERE ServiceName = '{batch.service}' FORMAT TSV"
    )
    print(f"\ncluster: {len(acked)} spans acknowledged, {stored} stored (FINAL), {raw} raw rows")


def test_trace_summaries_and_tool_rows_on_the_cluster(cluster: None) -> None:
    """Agent runs sent in two requests each (children, then the root), so their halves pass
    through either collector: every trace is summarised once, whole, on the cluster schema."""
    service = f"cluster-agents-{uuid.uuid4().hex[:8]}"
    runs = [genai_run(session=f"{service}-conv") for _ in range(20)]
    with grpc.insecure_channel("127.0.0.1:4317") as channel:
        export = channel.unary_unary(
            EXPORT, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        for run in runs:
            root, *children = run.spans
            export(make_request(service, *children).SerializeToString(), timeout=30)
            export(make_request(service, root).SerializeToString(), timeout=30)
    traces = ", ".join(f"'{run.trace_hex}'" for run in runs)
    summary_sql = (
        "SELECT count(), sum(spans), sum(llm_calls), sum(tool_calls), sum(tool_errors), "
        "countIf(has_root), uniqExact(session_id) FROM assay.trace_summary "
        f"WHERE trace_id IN ({traces}) FORMAT TSV"
    )
    expected = "20\t100\t40\t40\t20\t20\t1"
    deadline = time.monotonic() + 300
    summary = ""
    while time.monotonic() < deadline and summary != expected:
        summary = clickhouse(summary_sql)
        time.sleep(2)
    assert summary == expected
    tools = clickhouse(
        "SELECT count(), countIf(status = 'error') FROM assay.tool_calls FINAL "
        f"WHERE trace_id IN ({traces}) FORMAT TSV"
    )
    assert tools == "40\t20"
