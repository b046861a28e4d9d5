"""The collector watching itself: collector_stats rows, refusals by reason, the health verdict."""

from __future__ import annotations

import resource
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from assay.collector.settings import CollectorSettings
from assay.collector.store.embedded import EmbeddedStore
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import start_collector
from tests.faults import FaultyStore
from tests.reliability.inprocess import quick_settings, serving
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.integration


def test_collector_stats_record_traffic_and_refusals(tmp_path: Path) -> None:
    collector = start_collector(
        tmp_path / "data", tmp_path / "collector.log", ASSAY_STATS_INTERVAL="0.2"
    )
    try:
        url = f"{collector.http_url}/v1/traces"
        protobuf = {"content-type": "application/x-protobuf"}
        for _ in range(3):
            body = make_request("stats", make_span(), make_span()).SerializeToString()
            assert httpx.post(url, content=body, headers=protobuf).status_code == 200
        assert httpx.post(url, content=b"\xff\xfe garbage", headers=protobuf).status_code == 400
        text = {"content-type": "text/plain"}
        assert httpx.post(url, content=b"hello", headers=text).status_code == 415
        collector.wait_for_rows("SELECT 1 FROM otel_traces WHERE ServiceName = 'stats'", 6)
        time.sleep(0.6)  # at least two more samples after the rows landed

        (totals,) = collector.query(
            "SELECT sum(spans_received) AS received, sum(spans_written) AS written,"
            " sum(requests_accepted) AS accepted, sum(requests_refused) AS refusals,"
            " sumMap(refused) AS reasons, sumMap(deduplicated) AS duplicates,"
            " uniqExact(instance) AS instances,"
            " any(instance) AS name, max(writes) > 0 AS wrote,"
            " countIf(write_ms_avg IS NOT NULL) > 0 AS timed, min(status) AS worst"
            " FROM collector_stats"
        )
        assert totals["received"] == 6 and totals["written"] == 6 and totals["accepted"] == 3
        assert totals["refusals"] == 2
        assert totals["reasons"] == {"invalid": 1, "media_type": 1}
        assert totals["duplicates"] == {}  # nothing was replayed
        assert totals["instances"] == 1
        assert totals["name"].endswith(f":{collector.grpc_port}")
        assert totals["wrote"] and totals["timed"] and totals["worst"] == "ok"

        health = httpx.get(f"{collector.http_url}/api/health").json()
        assert health["status"] == "ok" and health["reasons"] == []
        assert health["instance"] == totals["name"]
        assert health["pipeline"]["refused"] == {"invalid": 1, "media_type": 1}
        assert health["pipeline"]["deduplicated"] == {}
        assert health["store"]["reports_duplicates"] is True
        # Counters that add up: the slowest write is one of the writes the total sums (the
        # interval's maximum, reset by each sample, goes to collector_stats only).
        counts = health["pipeline"]
        assert counts["segments_written"] > 0
        assert 0 < counts["write_ms_max"] <= counts["write_ms_total"]
        assert counts["spans_written"] <= counts["spans_received"]
    finally:
        assert collector.stop() == 0


def settings_for(tmp_path: Path, **extra: object) -> CollectorSettings:
    return quick_settings(tmp_path, retry_max=0.2, stats_interval=0.1, **extra)


def test_health_turns_unhealthy_when_the_store_stays_down(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    store = FaultyStore(embedded_store)
    with serving(settings_for(tmp_path, unhealthy_after=1.0), store) as endpoints:
        health_url = f"{endpoints.http_url}/api/health"
        assert httpx.get(health_url).json()["status"] == "ok"
        store.down = True
        first = httpx.get(health_url)
        assert first.status_code == 200 and first.json()["status"] == "degraded"
        time.sleep(1.3)
        later = httpx.get(health_url)
        assert later.status_code == 503
        assert later.json()["status"] == "unhealthy"
        assert "store unreachable" in later.json()["reasons"][0]
        store.down = False
        assert httpx.get(health_url).status_code == 200


def test_health_turns_unhealthy_when_the_spool_is_full(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    store = FaultyStore(embedded_store)
    settings = settings_for(tmp_path, max_spool_bytes=200_000, segment_bytes=20_000)
    service = f"full-{uuid.uuid4().hex[:8]}"
    with serving(settings, store) as endpoints:
        store.down = True
        log = SendLog()
        batch = Batch(service, requests=60, spans=5, content_bytes=1000)
        send(f"127.0.0.1:{endpoints.grpc_port}", batch, list(range(batch.requests)), log)
        assert log.refused  # the spool filled up and pushed back
        health = httpx.get(f"{endpoints.http_url}/api/health")
        assert health.status_code == 503
        assert any("spool full" in reason for reason in health.json()["reasons"])
        assert health.json()["pipeline"]["refused"]["overloaded"] == sum(log.refused.values())
        store.down = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(f"{endpoints.http_url}/api/health").status_code == 200:
                break
            time.sleep(0.1)
        assert httpx.get(f"{endpoints.http_url}/api/health").json()["status"] == "ok"


def test_health_turns_degraded_then_unhealthy_when_the_store_refuses_writes(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    """Reachable (it answers pings) yet taking no write: a full disk, a read-only table. The
    collector still takes requests (the spool holds them), so it is degraded at first."""
    store = FaultyStore(embedded_store)
    service = f"refusing-{uuid.uuid4().hex[:8]}"
    with serving(settings_for(tmp_path, unhealthy_after=1.0), store) as endpoints:
        store.fail_first = 10**9  # from here on (the start writes too)
        health_url = f"{endpoints.http_url}/api/health"
        log = SendLog()
        batch = Batch(service, requests=2, spans=3)
        send(f"127.0.0.1:{endpoints.grpc_port}", batch, [0, 1], log)
        assert not log.refused
        deadline = time.monotonic() + 10
        while store.failed_writes == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = httpx.get(health_url)
        assert first.status_code == 200 and first.json()["status"] == "degraded"
        (reason,) = first.json()["reasons"]
        assert reason.startswith("store writes failing for") and "injected" in reason
        time.sleep(1.2)
        later = httpx.get(health_url)
        assert later.status_code == 503 and later.json()["status"] == "unhealthy"
        store.fail_first = 0  # the store takes writes again
        deadline = time.monotonic() + 20
        while httpx.get(health_url).json()["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        recovered = httpx.get(health_url)
        assert recovered.status_code == 200 and recovered.json()["reasons"] == []
        # Healthy once a segment is stored: the requests may be in two, the second stored next.
        stored = f"SELECT count() FROM assay.otel_traces WHERE ServiceName = '{service}'"
        while embedded_store.query(stored)[1] != [(6,)] and time.monotonic() < deadline:
            time.sleep(0.1)
        _, rows = embedded_store.query(stored)
        assert rows == [(6,)]  # what was acknowledged while the store refused, now stored


def test_a_spool_disk_that_refuses_records_makes_the_collector_unhealthy(tmp_path: Path) -> None:
    """The process's file-size limit, lowered from outside once the collector runs, stands in
    for a full disk: the spool's writes fail (EFBIG) as they would with ENOSPC. Every request is
    then refused, so a load balancer must send traffic elsewhere; once the disk takes records
    again, so does the collector, and everything acknowledged is stored."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: the limit fails writes
    try:
        collector = start_collector(tmp_path / "data", tmp_path / "collector.log")
    finally:
        signal.signal(signal.SIGXFSZ, previous)
    url = f"{collector.http_url}/v1/traces"
    protobuf = {"content-type": "application/x-protobuf"}

    def body() -> bytes:  # spans of their own each time (the same span twice is one span)
        return make_request("diskfull", *[make_span() for _ in range(20)]).SerializeToString()

    try:
        assert httpx.post(url, content=body(), headers=protobuf).status_code == 200
        # Stored before the limit, so that the store's own writes do not meet it.
        collector.wait_for_rows("SELECT 1 FROM otel_traces WHERE ServiceName = 'diskfull'", 20)
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(collector.process.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        try:
            refused = httpx.post(url, content=body(), headers=protobuf)
            assert refused.status_code == 429 and "File too large" in refused.text
            health = httpx.get(f"{collector.http_url}/api/health")
            assert health.status_code == 503 and health.json()["status"] == "unhealthy"
            assert any("spool's disk refuses" in r for r in health.json()["reasons"])
            assert health.json()["pipeline"]["refused"] == {"disk_full": 1}
            time.sleep(1.1)  # the disk is probed once a second: it still refuses
            assert httpx.get(f"{collector.http_url}/api/health").status_code == 503
        finally:
            resource.prlimit(collector.process.pid, resource.RLIMIT_FSIZE, unlimited)
        # Healthy again with no request: a load balancer sends none to an unhealthy collector.
        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{collector.http_url}/api/health")).json()["status"] != "ok":
            assert time.monotonic() < deadline, health.json()["reasons"]
            time.sleep(0.2)
        assert httpx.post(url, content=body(), headers=protobuf).status_code == 200
        time.sleep(3)
        print(httpx.get(f"{collector.http_url}/api/health").text)
        print(collector.log()[-3000:])
        collector.wait_for_rows("SELECT 1 FROM otel_traces WHERE ServiceName = 'diskfull'", 40)
    finally:
        assert collector.stop() == 0
