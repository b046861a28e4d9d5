"""The stage times a benchmark reads from a collector process: per stage, per thread, and the
name of every thread, so bench/ingest.py can say which part of the collector spent its CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assay.collector.stage_timing import measure, stage


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_stage_counts_the_cpu_of_its_own_thread_apart_from_the_others() -> None:
    """With two threads busy at once, the process's CPU time of a stage counts both; the
    thread's own counts the thread that ran the stage only."""
    started = threading.Event()
    stop = threading.Event()

    def busy() -> None:
        started.set()
        while not stop.is_set():
            pass

    other = threading.Thread(target=busy, name="other")
    with measure() as times:
        other.start()
        started.wait()
        try:
            with stage("normalize"):
                _spin(0.2)
        finally:
            stop.set()
            other.join()
    own = times.thread_cpu[threading.current_thread().name]["normalize"]
    assert 0.2 <= own < 0.35
    assert set(times.thread_cpu) == {threading.current_thread().name}


@pytest.mark.subprocess
def test_a_measured_process_names_every_thread_it_started_those_in_no_stage_too(
    tmp_path: Path,
) -> None:
    """A thread that enters no stage (the asyncio executor's that fsync the spool) and one that
    ended long before the exit are named in the file by their OS thread ids."""
    out = tmp_path / "stages.json"
    code = (
        "import json, sys, threading\n"
        "import assay.collector.stage_timing\n"
        "ids = {}\n"
        "def idle():\n"
        "    ids[threading.current_thread().name] = threading.get_native_id()\n"
        "thread = threading.Thread(target=idle, name='asyncio_0')\n"
        "thread.start(); thread.join()\n"
        "ids['MainThread'] = threading.get_native_id()\n"
        "print(json.dumps(ids))\n"
    )
    env = {**os.environ, "ASSAY_STAGE_TIMES": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, timeout=60, capture_output=True
    )
    ids = json.loads(done.stdout)
    times = json.loads(out.read_text())
    assert times["threads"] == {str(tid): name for name, tid in ids.items()}
    assert times["thread_cpu"] == {}
