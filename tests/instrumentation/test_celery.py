"""Celery's prefork pool (billiard): a worker process's last spans reach the collector.

A billiard pool worker leaves through `os._exit` and runs none of `atexit` or multiprocessing's
finalizers, so the spans it ended in its last `OTEL_BSP_SCHEDULE_DELAY` are sent only by a flush
as it exits: Assay connects its exit flush to Celery's `worker_process_shutdown`, which billiard
sends in the worker just before it leaves. A real worker (prefork, two processes, the in-memory
broker) runs the tasks and is stopped as Celery is stopped (SIGTERM: a warm shutdown); the batch
delay is long, so only the exit flush can send the spans. The README's earlier recipe, a lambda
connected to the signal, is run too: Celery holds receivers weakly, so it never ran (0 of 8
stored before Assay connected its own). Skipped where Celery is not installed (not a dependency
of Assay's tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from tests.conftest import RunningCollector
from tests.instrumentation.test_setup import run_python

pytest.importorskip("celery")

TASKS = 8

APP = f"""
import os, signal, threading, time
from pathlib import Path
from celery import Celery
from celery.signals import worker_process_shutdown
from assay.instrumentation import force_flush, instrument
import openai

instrument()
if os.environ["RECIPE"] == "1":  # as the README gave it
    worker_process_shutdown.connect(lambda **kwargs: force_flush())

app = Celery("calls", broker="memory://")
app.conf.worker_hijack_root_logger = False
done = Path(os.environ["DONE"])

@app.task
def call(text):
    client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": text}}]
    )
    with done.open("a") as file:
        file.write("done\\n")

for n in range({TASKS}):
    call.delay(f"task {{n}}")

def stop_when_done():
    while not done.exists() or len(done.read_text().splitlines()) < {TASKS}:
        time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)  # as `docker stop` or Ctrl-C stop a worker: warm

threading.Thread(target=stop_when_done, daemon=True).start()
app.Worker(pool="prefork", concurrency=2, loglevel="WARNING", without_heartbeat=True,
           without_mingle=True, without_gossip=True).start()
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.mark.subprocess
@pytest.mark.parametrize("recipe", ["0", "1"], ids=["as-is", "old-readme-recipe"])
def test_every_call_of_a_prefork_worker_arrives_once(
    collector: RunningCollector, fake: FakeOpenAI, tmp_path: Path, recipe: str
) -> None:
    service = f"celery-{uuid.uuid4().hex[:8]}"
    run_python(
        APP,
        RECIPE=recipe,
        DONE=str(tmp_path / "done"),
        BASE_URL=fake.base_url,
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )

    assert len(fake.requests) == TASKS  # every task made its call
    sql = f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'"
    collector.wait_for_rows(sql, TASKS)
    collector.wait_until_stored()
    rows = collector.query(sql)
    assert len(rows) == TASKS and len({row["span_id"] for row in rows}) == TASKS
