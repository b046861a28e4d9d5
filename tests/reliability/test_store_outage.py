"""ClickHouse down: the collector keeps accepting into the spool, retries, and drains once the
store is back, losing and duplicating nothing."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from assay.collector.store.embedded import EmbeddedStore
from tests.faults import FaultyStore
from tests.reliability.inprocess import quick_settings, serving
from tests.reliability.traffic import Batch, SendLog, send

pytestmark = pytest.mark.integration


def test_an_outage_is_ridden_out_in_the_spool(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    store = FaultyStore(embedded_store)
    settings = quick_settings(tmp_path)
    service = f"outage-{uuid.uuid4().hex[:8]}"
    batch = Batch(service, requests=60, spans=10)
    count_sql = "SELECT count() FROM assay.otel_traces WHERE ServiceName = {s:String}"

    with serving(settings, store) as endpoints:
        store.down = True
        log = SendLog()
        send(f"127.0.0.1:{endpoints.grpc_port}", batch, list(range(batch.requests)), log)
        assert len(log.acked) == batch.requests  # accepted into the spool while the store is down
        time.sleep(1.0)
        health = httpx.get(f"{endpoints.http_url}/api/health").json()
        assert health["pipeline"]["write_failures"] >= 2 and health["spool"]["bytes"] > 0
        assert embedded_store.query(count_sql, {"s": service})[1] == [(0,)]

        store.down = False  # ClickHouse is back
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # The spool empties once the writer released the last segment, after its rows.
            drained = httpx.get(f"{endpoints.http_url}/api/health").json()["spool"]["bytes"] == 0
            if drained and embedded_store.query(count_sql, {"s": service})[1] == [(600,)]:
                break
            time.sleep(0.1)
        _, per_span = embedded_store.query(
            "SELECT uniqExact(SpanId), count() FROM assay.otel_traces "
            "WHERE ServiceName = {s:String}",
            {"s": service},
        )
        print(
            f"\nstore outage: sent {batch.requests * batch.spans} spans, acknowledged "
            f"{len(log.acked) * batch.spans}, failed writes during the outage "
            f"{store.failed_writes}, stored {per_span[0][0]}, duplicated "
            f"{per_span[0][1] - per_span[0][0]}"
        )
        assert per_span == [(600, 600)]
        # A segment is released once every table of it is written: the traces can be visible
        # a moment before its last table is.
        spooled = -1
        while spooled != 0 and time.monotonic() < deadline + 10:
            spooled = httpx.get(f"{endpoints.http_url}/api/health").json()["spool"]["bytes"]
            time.sleep(0.1)
        assert spooled == 0
