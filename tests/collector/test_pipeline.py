"""The writer: drains spool segments into the store, retries failed writes without duplicates,
and refuses new requests when the spool is full."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.online import OnlineEvaluation
from assay.collector.pipeline import Overloaded, Pipeline
from assay.collector.settings import CollectorSettings
from assay.collector.spool import DiskSpool, MemorySpool, Spool
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.faults import FaultyStore

SETTINGS = CollectorSettings(
    flush_interval=0.05, retry_initial=0.01, retry_max=0.05, shutdown_timeout=5
)


def _submit(pipeline: Pipeline, service: str, spans: int, **attrs: Any) -> None:
    request = make_request(service, *(make_span(attrs=attrs) for _ in range(spans)))
    asyncio.run(pipeline.submit("traces", request.SerializeToString(), spans))


def _count(store: EmbeddedStore, service: str, table: str = "otel_traces") -> int:
    column = "service_name" if table == "llm_calls" else "ServiceName"
    _, rows = store.query(
        f"SELECT count() FROM assay.{table} WHERE {column} = {{s:String}}", {"s": service}
    )
    return int(rows[0][0])


@pytest.fixture(params=["disk", "memory"])
def spool(request: pytest.FixtureRequest, tmp_path: Path) -> Spool:
    if request.param == "disk":
        return DiskSpool(tmp_path / "spool", max_bytes=10**8, max_age=0.05)
    return MemorySpool(max_bytes=10**8, max_age=0.05)


def test_requests_are_written_to_the_store(embedded_store: EmbeddedStore, spool: Spool) -> None:
    pipeline = Pipeline(embedded_store, spool, SETTINGS)
    pipeline.start()
    service = f"batch-{uuid.uuid4().hex[:8]}"
    for _ in range(20):
        _submit(pipeline, service, 2, **{sc.REQUEST_MODEL: "gpt-4o"})
    assert pipeline.flush(20)
    pipeline.stop()
    assert _count(embedded_store, service) == 40
    stats = pipeline.stats.snapshot()
    assert stats["spans_written"] == 40 and stats["llm_calls_written"] == 40
    assert stats["spans_received"] == 40


@pytest.mark.parametrize("lose_reply", [False, True])
def test_a_failing_store_is_retried_until_it_recovers_without_duplicates(
    embedded_store: EmbeddedStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    lose_reply: bool,
) -> None:
    flaky = FaultyStore(embedded_store, fail_first=3, lose_reply=lose_reply)
    pipeline = Pipeline(flaky, DiskSpool(tmp_path / "s", 10**8, max_age=0.05), SETTINGS)  # type: ignore[arg-type]
    pipeline.start()
    service = f"flaky-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="assay.collector.pipeline"):
        _submit(pipeline, service, 5, **{sc.REQUEST_MODEL: "gpt-4o"})
        assert pipeline.flush(20)
    pipeline.stop()
    assert _count(embedded_store, service) == 5
    stats = pipeline.stats.snapshot()
    assert stats["write_failures"] == 3
    assert "retrying" in caplog.text
    # Rows whose reply was lost are in the store once, and written by this run: the counters
    # say what the tables hold (they said "deduplicated" before).
    assert (stats["spans_written"], stats["llm_calls_written"]) == (
        _count(embedded_store, service),
        _count(embedded_store, service, "llm_calls"),
    )
    assert stats["deduplicated"] == {}


def test_a_replayed_segment_counts_what_an_earlier_run_stored_apart_from_a_lost_reply(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    """An earlier run stored a segment's spans and crashed before storing the rest; the replay
    finds the spans there (duplicates: that run counted them), and the reply of its own insert
    of the calls is lost: those it counts as written, for it stored them."""
    service = f"replay-lost-{uuid.uuid4().hex[:8]}"
    spool = DiskSpool(tmp_path / "s", 10**8, max_age=3600)
    request = make_request(service, *(make_span(attrs={sc.REQUEST_MODEL: "m"}) for _ in range(4)))
    spool.append("traces", request.SerializeToString())
    spool.seal()
    segment = spool.next_segment(timeout=1)
    assert segment is not None
    earlier = Pipeline(embedded_store, spool, SETTINGS)
    spans = earlier._rows(segment).traces.traces  # the earlier run's insert, then its crash
    embedded_store.insert_rows(spans, dedup_token=f"{segment.token}-otel_traces")
    spool.close()

    flaky = FaultyStore(embedded_store, fail_first=1, lose_reply=True, table="llm_calls")
    replay = Pipeline(flaky, DiskSpool(tmp_path / "s", 10**8, max_age=0.05), SETTINGS)  # type: ignore[arg-type]
    replay.start()
    assert replay.flush(20)
    replay.stop()
    stats = replay.stats.snapshot()
    assert stats["write_failures"] == 1
    assert _count(embedded_store, service, "llm_calls") == stats["llm_calls_written"] == 4
    assert _count(embedded_store, service) == 4
    assert (stats["spans_written"], stats["deduplicated"]) == (0, {"otel_traces": 4})


def test_a_full_spool_refuses_with_back_pressure(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    never = FaultyStore(embedded_store, fail_first=10**9)
    spool = DiskSpool(tmp_path / "s", max_bytes=20_000, max_age=0.05)
    pipeline = Pipeline(never, spool, SETTINGS)  # type: ignore[arg-type]
    pipeline.start()
    accepted = 0
    with pytest.raises(Overloaded) as refused:
        for _ in range(10):
            _submit(pipeline, "full", 1, **{sc.INPUT_MESSAGES: "x" * 4000})
            accepted += 1
    assert 0 < accepted < 10
    assert refused.value.retry_after >= 1
    assert pipeline.stats.snapshot()["requests_refused"] == 1
    pipeline.stop(timeout=5)
    # The store never took them, so they are still in the spool for the next start.
    assert spool.stats().bytes > 0 and list((tmp_path / "s").glob("*.seg"))


def test_a_request_whose_fsync_failed_is_refused_not_acknowledged(
    embedded_store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error on fsync (injected) is back-pressure for that request, which the client
    sends again; the requests before and after it are acknowledged and stored."""
    import errno
    import os

    from assay.collector import spool as spool_module

    real_fsync, failing = os.fsync, [1]

    def fsync(fd: int) -> None:
        if failing and refusing.is_set():
            failing.pop()
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    refusing = threading.Event()
    monkeypatch.setattr(spool_module.os, "fsync", fsync)
    pipeline = Pipeline(embedded_store, DiskSpool(tmp_path / "s", 10**8, max_age=60), SETTINGS)
    pipeline.start()
    service = f"fsync-{uuid.uuid4().hex[:8]}"
    _submit(pipeline, service, 2)
    refusing.set()
    with pytest.raises(Overloaded, match="fsync failed") as refused:
        _submit(pipeline, service, 3)
    assert refused.value.retry_after >= 1
    _submit(pipeline, service, 4)
    pipeline.spool.seal()  # sealed by hand (max_age=60): no seal's fsync races the failure
    assert pipeline.flush(20)
    pipeline.stop()
    assert pipeline.stats.snapshot()["requests_refused"] == 1
    assert pipeline.stats.snapshot()["requests_accepted"] == 2
    # The refused request's spans reached the segment and are stored anyway (at least once).
    assert _count(embedded_store, service) == 9


def test_what_a_stopped_writer_left_is_replayed_once_by_the_next(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    """Replaying a segment the store already has stores nothing, counts its rows as
    deduplicated, not written, evaluates none of its calls again, and leaves the dashboards'
    rollups as they were."""
    service = f"replay-{uuid.uuid4().hex[:8]}"
    down = FaultyStore(embedded_store, fail_first=10**9)
    first = Pipeline(down, DiskSpool(tmp_path / "s", 10**8, max_age=0.05), SETTINGS)  # type: ignore[arg-type]
    first.start()
    _submit(first, service, 7, **{sc.REQUEST_MODEL: "gpt-4o"})
    first.stop(timeout=5)
    assert _count(embedded_store, service) == 0

    # A copy of the spool as it was: replaying both is replaying the same spool twice.
    shutil.copytree(tmp_path / "s", tmp_path / "copy")
    rules = EvaluationConfig.model_validate(
        {
            "rules": [
                {"evaluators": [{"latency_budget": {"ms": 3000}}], "where": {"service": service}}
            ]
        }
    )
    counts = []
    for folder in ("s", "copy"):
        online = OnlineEvaluation(rules, embedded_store)
        again = Pipeline(
            embedded_store, DiskSpool(tmp_path / folder, 10**8, max_age=0.05), SETTINGS, online
        )
        again.start()
        assert again.flush(20)
        again.stop()
        assert _count(embedded_store, service) == 7
        stats = again.stats.snapshot()
        counts.append(
            (
                stats["spans_written"],
                stats["llm_calls_written"],
                stats["deduplicated"],
                online.snapshot()["offered"],
            )
        )
    assert counts == [
        (7, 7, {}, 7),
        (0, 0, {"otel_traces": 7, "llm_calls": 7, "trace_spans": 7}, 0),
    ]
    assert not list((tmp_path / "copy").glob("*.seg"))
    _, rollup = embedded_store.query(
        "SELECT sum(calls) FROM assay.llm_calls_1m WHERE service_name = {s:String}",
        {"s": service},
    )
    assert rollup == [(7,)]


def test_stage_timing_names_every_stage_of_the_path_only_while_measuring(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    """bench/ingest.py's per-stage table: each stage a request and its segment pass through is
    timed while `measure()` is on, and nothing is recorded outside it."""
    from assay.collector.receivers.intake import take
    from assay.collector.stage_timing import measure

    settings = CollectorSettings(flush_interval=3600, redact=["email"])
    spool = DiskSpool(tmp_path / "spool", max_bytes=10**8, max_age=3600)
    pipeline = Pipeline(embedded_store, spool, settings)
    request = make_request(
        f"stages-{uuid.uuid4().hex[:8]}",
        make_span(attrs={sc.REQUEST_MODEL: "gpt-4o", sc.INPUT_MESSAGES: "mail a@b.example"}),
    )
    with measure() as times:
        asyncio.run(take(pipeline, "traces", request, request.SerializeToString()))
        spool.seal()
        segment = spool.next_segment(timeout=1)
        assert segment is not None and pipeline._write(segment)
        first = set(times.cpu)
        # The segment read again (not released): the store may have it, so its rows are counted.
        again = spool.next_segment(timeout=1)
        assert again is not None and again.replayed and pipeline._write(again)
    assert first == {
        "validate",
        "redact",
        "encode again (redacted)",
        "spool append + fsync",
        "decode (writer)",
        "normalize",
        "correlate + link",
        "look up resent calls",
        "build columns",
        "insert otel_traces",
        "insert llm_calls",
        "insert trace_spans",
    }
    assert set(times.cpu) == first | {"count new rows"}
    assert times.passes["insert llm_calls"] == 2 and times.passes["build columns"] == 6
    assert pipeline.stats.snapshot()["deduplicated"] == {
        "otel_traces": 1,
        "llm_calls": 1,
        "trace_spans": 1,
    }
    assert all(seconds >= 0 for seconds in times.wall.values())
    # Every stage ran in this thread: the thread's OS id names it (bench/ingest_growth.py).
    assert times.threads == {threading.get_native_id(): threading.current_thread().name}
    before = dict(times.passes)
    asyncio.run(take(pipeline, "traces", request, request.SerializeToString()))
    assert times.passes == before  # off again: the second request is not counted
    spool.close()


@pytest.mark.subprocess
def test_a_process_started_with_assay_stage_times_writes_its_stages_when_it_exits(
    tmp_path: Path,
) -> None:
    """How bench/ingest_growth.py reads a collector process's stages: measured from the import,
    written as JSON at exit, with the name of each thread that entered a stage."""
    out = tmp_path / "stages.json"
    code = (
        "import threading\n"
        "from assay.collector.stage_timing import stage\n"
        "def work():\n"
        "    with stage('insert scores'): pass\n"
        "thread = threading.Thread(target=work, name='assay-writer')\n"
        "thread.start(); thread.join()\n"
        "with stage('insert scores'): pass\n"
    )
    env = {**os.environ, "ASSAY_STAGE_TIMES": str(out)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    times = json.loads(out.read_text())
    assert times["passes"] == {"insert scores": 2}
    assert sorted(times["threads"].values()) == ["MainThread", "assay-writer"]


class _GatedStore(FaultyStore):
    """The real store, whose writes wait until `gate` is set; `waiting` is set while a write
    waits at the gate."""

    def __init__(self, store: EmbeddedStore) -> None:
        super().__init__(store)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(30)
        return super().insert(*args, **kwargs)


def test_the_next_segments_are_normalized_while_one_is_stored_three_at_most(
    embedded_store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a segment is stored, the next has its spans stored and the one after is turned into
    rows (the engine's inserts run off Python's lock, so they share the cores); one more waits
    for a slot, and none is released before it is stored."""
    from assay.collector import pipeline as pipeline_module

    read: list[str] = []
    normalize = pipeline_module.normalize_traces

    def noting(request: Any, batch: Any) -> Any:
        read.append(request.resource_spans[0].resource.attributes[0].value.string_value)
        return normalize(request, batch)

    monkeypatch.setattr(pipeline_module, "normalize_traces", noting)
    gated = _GatedStore(embedded_store)
    spool = MemorySpool(max_bytes=10**8, max_age=3600)
    pipeline = Pipeline(gated, spool, SETTINGS)  # type: ignore[arg-type]
    pipeline.start()
    services = [f"ahead-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    _submit(pipeline, services[0], 3)
    spool.seal()
    assert gated.waiting.wait(10)  # the first segment is being stored
    for service in services[1:]:
        _submit(pipeline, service, 3)
        spool.seal()
    for _ in range(200):
        if services[2] in read:
            break
        time.sleep(0.05)
    assert read[:3] == services[:3]  # read ahead while the first waits at the store
    time.sleep(0.3)
    assert services[3] not in read  # three segments in flight, no more
    assert spool.stats().segments == 5  # none released before it is stored
    gated.gate.set()
    assert pipeline.flush(20)
    pipeline.stop()
    assert read == services
    assert [_count(embedded_store, service) for service in services] == [3] * 5
    assert spool.stats().bytes == 0
    # Stored once each, the spans ahead of the rest: nothing counted twice or missed.
    stats = pipeline.stats.snapshot()
    assert (stats["spans_written"], stats["segments_written"], stats["deduplicated"]) == (15, 5, {})


@pytest.mark.parametrize("lose_reply", [False, True])
def test_spans_whose_insert_ahead_failed_are_stored_by_the_writer_once(
    embedded_store: EmbeddedStore, lose_reply: bool
) -> None:
    """The spans' insert ahead of the writer fails (its rows landed or not): the writer stores
    them with the rest of the segment, counted, so the store and the counters hold each once."""
    flaky = FaultyStore(embedded_store, fail_first=1, lose_reply=lose_reply)
    spool = MemorySpool(max_bytes=10**8, max_age=3600)
    pipeline = Pipeline(flaky, spool, SETTINGS)  # type: ignore[arg-type]
    pipeline.start()
    service = f"ahead-fail-{uuid.uuid4().hex[:8]}"
    _submit(pipeline, service, 4, **{sc.REQUEST_MODEL: "gpt-4o"})
    spool.seal()
    assert pipeline.flush(20)
    pipeline.stop()
    assert _count(embedded_store, service) == 4
    stats = pipeline.stats.snapshot()
    assert stats["write_failures"] == 1 and stats["llm_calls_written"] == 4
    # Spans whose reply was lost were stored by this run: written, not duplicates.
    assert (stats["spans_written"], stats["deduplicated"]) == (4, {})


def test_segments_read_ahead_stay_spooled_when_the_store_is_down_at_shutdown(
    embedded_store: EmbeddedStore, tmp_path: Path
) -> None:
    service = f"ahead-down-{uuid.uuid4().hex[:8]}"
    down = FaultyStore(embedded_store, fail_first=10**9)
    spool = DiskSpool(tmp_path / "s", 10**8, max_age=3600)
    first = Pipeline(down, spool, SETTINGS)  # type: ignore[arg-type]
    first.start()
    for _ in range(3):
        _submit(first, service, 4)
        spool.seal()
    first.stop(timeout=2)
    assert _count(embedded_store, service) == 0
    assert len(list((tmp_path / "s").glob("*.seg"))) == 3  # all kept, the one read ahead too

    again = Pipeline(embedded_store, DiskSpool(tmp_path / "s", 10**8, max_age=0.05), SETTINGS)
    again.start()
    assert again.flush(20)
    again.stop()
    assert _count(embedded_store, service) == 12
    assert again.stats.snapshot()["segments_written"] == 3
