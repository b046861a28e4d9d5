"""kill -9 in the middle of a stream and SIGTERM: nothing acknowledged is lost or duplicated."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import RunningCollector, start_collector
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.integration


def stored_span_ids(collector: RunningCollector, service: str) -> tuple[dict[str, int], int]:
    """Stored rows per span id in otel_traces (before merges) and llm_calls rows."""
    rows = collector.query(
        f"SELECT SpanId, count() AS n FROM assay.otel_traces WHERE ServiceName = '{service}' "
        "GROUP BY SpanId"
    )
    calls = collector.query(
        f"SELECT count() AS n FROM assay.llm_calls WHERE service_name = '{service}'"
    )
    return {r["SpanId"]: r["n"] for r in rows}, calls[0]["n"]


def wait_until_drained(collector: RunningCollector, service: str, expected: int) -> dict[str, int]:
    collector.wait_for_rows(
        f"SELECT 1 FROM (SELECT uniqExact(SpanId) AS u FROM assay.otel_traces "
        f"WHERE ServiceName = '{service}') WHERE u >= {expected}",
        1,
        timeout=60,
    )
    return stored_span_ids(collector, service)[0]


def test_kill_9_mid_stream_loses_no_acknowledged_span(tmp_path: Path) -> None:
    service = f"kill9-{uuid.uuid4().hex[:8]}"
    batch = Batch(service, requests=400, spans=25)
    collector = start_collector(tmp_path / "data", tmp_path / "log1")
    log = SendLog()
    killed = threading.Event()

    def kill_after(index: int) -> None:
        if len(log.acked) == 120 and not killed.is_set():
            os.kill(collector.process.pid, signal.SIGKILL)
            killed.set()

    send(
        f"127.0.0.1:{collector.grpc_port}",
        batch,
        list(range(batch.requests)),
        log,
        timeout=5,
        on_ack=kill_after,
    )
    collector.process.wait()
    assert killed.is_set() and collector.process.returncode == -signal.SIGKILL
    acked_before = set(log.acked)
    unanswered = [i for i in range(batch.requests) if i not in acked_before]

    restarted = start_collector(tmp_path / "data", tmp_path / "log2")
    try:
        # An SDK would retry what was not acknowledged; so does this test.
        send(f"127.0.0.1:{restarted.grpc_port}", batch, unanswered, log, timeout=10)
        assert log.acked == set(range(batch.requests))
        expected = batch.requests * batch.spans
        per_span = wait_until_drained(restarted, service, expected)
        acked_ids = {s for i in acked_before for s in batch.span_ids[i]}
        missing = acked_ids - per_span.keys()
        duplicated = {s: n for s, n in per_span.items() if n > 1}
        final = restarted.query(
            f"SELECT count() AS n FROM assay.otel_traces FINAL WHERE ServiceName = '{service}'"
        )[0]["n"]
        print(
            f"\nkill -9: sent {expected} spans; acknowledged before the kill "
            f"{len(acked_ids)}; stored {len(per_span)} distinct; missing {len(missing)}; "
            f"rows duplicated before merge {sum(n - 1 for n in duplicated.values())} "
            f"(unacknowledged requests resent); after FINAL {final}"
        )
        assert not missing
        # Acknowledged before the kill, and so never resent: exactly one row each.
        assert not {s for s in acked_ids if per_span[s] > 1}
        assert final == expected
    finally:
        restarted.stop()


def test_sigterm_stops_accepting_and_keeps_everything_accepted(tmp_path: Path) -> None:
    service = f"term-{uuid.uuid4().hex[:8]}"
    batch = Batch(service, requests=200, spans=20)
    collector = start_collector(tmp_path / "data", tmp_path / "log1")
    log = SendLog()
    stopping = threading.Event()

    def terminate_after(index: int) -> None:
        if len(log.acked) == 80 and not stopping.is_set():
            stopping.set()
            collector.process.send_signal(signal.SIGTERM)

    send(
        f"127.0.0.1:{collector.grpc_port}",
        batch,
        list(range(batch.requests)),
        log,
        timeout=5,
        on_ack=terminate_after,
    )
    assert collector.process.wait(60) == 0
    assert "collector stopped" in collector.log()
    assert log.refused, "requests after SIGTERM must be refused, not silently dropped"

    restarted = start_collector(tmp_path / "data", tmp_path / "log2")
    try:
        acked_ids = {s for i in log.acked for s in batch.span_ids[i]}
        per_span = wait_until_drained(restarted, service, len(acked_ids))
        print(
            f"\nSIGTERM: sent {len(log.acked) + sum(log.refused.values())} requests, "
            f"acknowledged {len(log.acked)} ({len(acked_ids)} spans), refused "
            f"{dict(log.refused)}, stored {len(per_span)} spans, duplicated "
            f"{sum(n - 1 for n in per_span.values())}"
        )
        assert acked_ids <= per_span.keys()
        assert all(n == 1 for n in per_span.values())
    finally:
        restarted.stop()
