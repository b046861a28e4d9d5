"""Overload: a burst far faster than the store can take is answered with back-pressure, memory
stays bounded, health checks stay answered, and everything acknowledged is stored."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import start_collector
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.integration

SPOOL_LIMIT = 8 * 1024 * 1024


def test_a_burst_gets_back_pressure_not_timeouts(tmp_path: Path) -> None:
    collector = start_collector(
        tmp_path / "data",
        tmp_path / "log",
        ASSAY_MAX_SPOOL_BYTES=str(SPOOL_LIMIT),
        ASSAY_SEGMENT_BYTES=str(2 * 1024 * 1024),
    )
    process = psutil.Process(collector.process.pid)
    baseline = process.memory_info().rss
    service = f"burst-{uuid.uuid4().hex[:8]}"
    batch = Batch(service, requests=120, spans=300, content_bytes=2500)  # ~0.9 MB a request
    sent_bytes = sum(map(len, batch.bodies))
    peak, health_slowest = baseline, 0.0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak, health_slowest
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            started = time.monotonic()
            httpx.get(f"{collector.http_url}/api/health", timeout=10)
            health_slowest = max(health_slowest, time.monotonic() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    logs = [SendLog() for _ in range(3)]
    senders = [
        threading.Thread(
            target=send,
            args=(
                f"127.0.0.1:{collector.grpc_port}",
                batch,
                list(range(i, batch.requests, 3)),
                logs[i],
            ),
        )
        for i in range(3)
    ]
    try:
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        done.set()
        watcher.join()
        acked = set().union(*(log.acked for log in logs))
        refused: dict[str, int] = {}
        for log in logs:
            for code, n in log.refused.items():
                refused[code] = refused.get(code, 0) + n
        slowest = max(log.slowest_reply_s for log in logs)
        acked_spans = len(acked) * batch.spans
        rows = collector.wait_for_rows(
            f"SELECT 1 FROM (SELECT count() AS n FROM assay.otel_traces WHERE ServiceName = "
            f"'{service}') WHERE n >= {acked_spans}",
            1,
            timeout=120,
        )
        stored = collector.query(
            f"SELECT count() AS n, uniqExact(SpanId) AS u FROM assay.otel_traces "
            f"WHERE ServiceName = '{service}'"
        )[0]
        print(
            f"\noverload: sent {batch.requests} requests ({sent_bytes / 2**20:.0f} MiB, "
            f"{batch.requests * batch.spans} spans) with a {SPOOL_LIMIT // 2**20} MiB spool; "
            f"acknowledged {len(acked)} ({acked_spans} spans), refused {refused}; slowest reply "
            f"{slowest:.2f}s; slowest health check {health_slowest:.2f}s; RSS "
            f"{baseline / 2**20:.0f} → peak {peak / 2**20:.0f} MiB; stored {stored['n']} "
            f"(duplicated {stored['n'] - stored['u']})"
        )
        assert rows
        assert refused.get("RESOURCE_EXHAUSTED", 0) > 0, "the burst must meet back-pressure"
        assert set(refused) == {"RESOURCE_EXHAUSTED"}, refused  # no timeouts, no failures
        assert slowest < 5 and health_slowest < 5
        assert stored["n"] == stored["u"] == acked_spans
        # Memory: what the spool limit, a segment in the writer and requests in flight allow.
        assert peak - baseline < 700 * 2**20, (baseline, peak)
    finally:
        done.set()
        collector.stop()
