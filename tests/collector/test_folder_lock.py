"""One collector per spool folder: a second collector pointed at a folder another one is using
refuses to start, saying so, and the first one's data is all stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import start_collector

pytestmark = pytest.mark.integration
COLLECTOR = (sys.executable, "-m", "assay.collector", "collector")


def send_calls(http_url: str, service: str, count: int) -> None:
    spans = [
        make_span(attrs={sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "gpt-4o"})
        for _ in range(count)
    ]
    response = httpx.post(
        f"{http_url}/v1/traces",
        content=make_request(service, *spans).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text


def test_a_second_collector_on_the_same_spool_folder_refuses_to_start(tmp_path: Path) -> None:
    # Two embedded stores (chDB locks each store's folder) sharing one spool folder, as two
    # collectors on one ClickHouse server started from one directory share ./assay-spool.
    spool = tmp_path / "spool"
    first = start_collector(tmp_path / "a", tmp_path / "a.log", ASSAY_SPOOL_DIR=str(spool))
    try:
        send_calls(first.http_url, "first", 5)
        second = subprocess.run(
            [*COLLECTOR, "--storage", str(tmp_path / "b"), "--grpc-port", "0", "--http-port", "0"],
            env={**os.environ, "ASSAY_SPOOL_DIR": str(spool)},
            capture_output=True,
            text=True,
            timeout=90,  # it ran on, sharing the folder, before it refused
        )
        message = " ".join(second.stderr.split())
        assert second.returncode == 1, message
        assert f"the spool folder {spool} is in use by another collector" in message
        assert "ASSAY_SPOOL_DIR" in message

        send_calls(first.http_url, "first", 5)
        first.wait_for_rows("SELECT 1 FROM assay.llm_calls WHERE service_name = 'first'", 10)
        (health,) = [httpx.get(f"{first.http_url}/api/health").json()]
        assert health["spool"]["corrupt_records"] == 0
    finally:
        assert first.stop() == 0
    # The lock ends with the collector that held it: the folder serves the next start.
    again = start_collector(tmp_path / "b", tmp_path / "b.log", ASSAY_SPOOL_DIR=str(spool))
    again.stop()
