"""Processes forked after `instrument()`: each child's calls reach the collector, once each.

Forking servers set up in the parent and fork their workers: gunicorn with `--preload` (a
worker leaves through `sys.exit`, so `atexit` runs), `multiprocessing` pools (a worker leaves
through `os._exit`: no `atexit`) and Celery's prefork pool (billiard, alike). The parent here
exports before it forks, so that a connection it kept alive would be inherited by the children.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from tests.conftest import RunningCollector
from tests.instrumentation.test_setup import run_python

CHILDREN = 3
CALLS = 8  # per child

APP = f"""
import os, sys
from assay.instrumentation import force_flush, instrument
import openai

instrument()
clients = {{}}

def call(text):
    # One client per process: an HTTP client's own connections must not cross a fork either.
    client = clients.setdefault(os.getpid(), openai.OpenAI(
        base_url=os.environ["BASE_URL"], api_key="test-key", max_retries=0
    ))
    messages = [{{"role": "user", "content": text}}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)

call("the parent, before the fork")
force_flush()

if os.environ["MODE"] == "gunicorn":
    children = []
    for number in range({CHILDREN}):
        pid = os.fork()
        if pid == 0:
            for n in range({CALLS}):
                call(f"child {{number}}, call {{n}}")
            sys.exit(0)  # as a gunicorn worker leaves: atexit runs
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
else:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool({CHILDREN}) as pool:
        pool.map(call, [f"task {{n}}" for n in range({CHILDREN * CALLS})], chunksize=1)
        pool.close()  # the workers leave when the tasks are done, through os._exit
        pool.join()

call("the parent, after the children")
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize(
    ("mode", "delay"),
    [
        # Children export while their siblings and the parent do: a connection shared across
        # the fork would carry interleaved requests.
        ("gunicorn", "5"),
        ("multiprocessing", "5"),
        # Only the flush as a worker exits can send its spans.
        ("multiprocessing", "600000"),
    ],
)
def test_every_call_of_forked_children_arrives_once(
    collector: RunningCollector, fake: FakeOpenAI, protocol: str, mode: str, delay: str
) -> None:
    service = f"fork-{uuid.uuid4().hex[:8]}"
    run_python(
        APP,
        MODE=mode,
        BASE_URL=fake.base_url,
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=(
            collector.grpc_endpoint if protocol == "grpc" else collector.http_url
        ),
        OTEL_BSP_SCHEDULE_DELAY=delay,
    )

    expected = 2 + CHILDREN * CALLS
    sql = f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'"
    collector.wait_for_rows(sql, expected)
    collector.wait_until_stored()
    rows = collector.query(sql)
    assert len(rows) == expected  # none lost, none twice (the parent's queue is not copied)
    assert len({row["span_id"] for row in rows}) == expected
