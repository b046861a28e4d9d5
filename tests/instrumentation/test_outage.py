"""A collector that is down when the app calls: the calls arrive once it is back.

The OTLP exporter retries a batch for its timeout, then the SDK drops it: an app that started
before its collector, or ran through a collector's restart, lost every call made meanwhile.
The app here calls while nothing listens at its endpoint and flushes (the export fails), then
the collector starts on that endpoint and the app makes one more call and exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from tests import conftest

CALLS = 12

APP = f"""
import os, sys
from assay.instrumentation import force_flush, instrument
import openai

instrument()
client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="test-key", max_retries=0)

def call(text):
    messages = [{{"role": "user", "content": text}}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

for n in range({CALLS}):
    call(f"while the collector is down: {{n}}")
force_flush(timeout_millis=120_000)  # returns once the export has failed
print("flushed", flush=True)
sys.stdin.readline()  # the collector is up
call("once the collector is back")
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.mark.integration
@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_calls_made_while_the_collector_is_down_arrive_when_it_is_back(
    tmp_path: Path, fake: FakeOpenAI, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grpc_port, http_port = conftest.free_port(), conftest.free_port()
    port = grpc_port if protocol == "grpc" else http_port
    service = f"outage-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))}
    app = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(APP)],
        env={
            **base,
            "BASE_URL": fake.base_url,
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2",  # the exporter gives the batch up after 2 s
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "app.log").open("wb"),
        text=True,
    )
    try:
        assert app.stdout is not None
        assert app.stdout.readline().strip() == "flushed", (tmp_path / "app.log").read_text()

        ports = iter([grpc_port, http_port])  # the collector starts where the app sends
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports))
        collector = conftest.start_collector(tmp_path / "data", tmp_path / "collector.log")
        try:
            app.communicate("the collector is up\n", timeout=120)
            assert app.returncode == 0, (tmp_path / "app.log").read_text()
            sql = f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'"
            collector.wait_for_rows(sql, CALLS + 1)
            collector.wait_until_stored()
            rows = collector.query(sql)
            assert len({row["span_id"] for row in rows}) == len(rows) == CALLS + 1
        finally:
            collector.stop()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
