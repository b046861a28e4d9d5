"""What each stage of the ingest path costs, for `bench/ingest.py`'s per-stage table.

Off unless a benchmark turns it on (`measure()`): then `stage(name)` is a shared no-op context
manager, and production pays one global read per stage of a request or segment, not per span.
On, it adds up per stage the wall time (perf_counter) and the process's CPU time (process_time:
every thread's, so the store's own threads count in an insert) of each pass through it, and
the CPU time of Python's garbage collections (a part of the stages'). It also adds up, per
thread name, the CPU time of the thread that ran each stage (thread_time): with several threads
busy at once (a collector under load) the process's CPU time of a stage counts the others' too.

A collector started with `ASSAY_STAGE_TIMES=<file>` in its environment measures from its start
and writes the times to that file (JSON: wall, cpu, passes by stage, thread_cpu by thread name
and stage, and the name of every Python thread started meanwhile by its OS thread id) when it
exits: how `bench/ingest.py` names a collector's threads in its CPU split and
`bench/ingest_growth.py` sees a collector process's per-insert time by table.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StageTimes:
    """Seconds by stage name, in the order the stages were first entered."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    passes: dict[str, int] = field(default_factory=dict)
    gc_cpu: float = 0.0
    gc_runs: int = 0
    # The name of each thread that entered a stage, by its OS thread id: what tells a thread's
    # CPU time in /proc/<pid>/task apart (Python before 3.14 does not name the OS threads).
    threads: dict[int, str] = field(default_factory=dict)
    # Seconds by thread name, then stage: the CPU of the thread that ran the stage alone. A stage
    # that awaits (a coroutine's) counts what its thread ran for others meanwhile.
    thread_cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    _gc_started: float = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            self.gc_cpu += time.process_time() - self._gc_started
            self.gc_runs += 1

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        thread = threading.current_thread().name
        self.threads[threading.get_native_id()] = thread
        wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
            self.passes[name] = self.passes.get(name, 0) + 1
            mine = self.thread_cpu.setdefault(thread, {})
            mine[name] = mine.get(name, 0.0) + time.thread_time() - own


_NOTHING = nullcontext()
_times: StageTimes | None = None


def stage(name: str) -> AbstractContextManager[None]:
    """Time the block as stage `name` while measuring; otherwise do nothing."""
    return _NOTHING if _times is None else _times.time(name)


@contextmanager
def measure() -> Iterator[StageTimes]:
    """Time every stage entered (by any thread) until the block ends."""
    global _times
    times = StageTimes()
    _times = times
    gc.callbacks.append(times._on_gc)
    try:
        yield times
    finally:
        _times = None
        gc.callbacks.remove(times._on_gc)


def _measure_until_exit(path: Path) -> None:
    global _times
    times = _times = StageTimes()
    gc.callbacks.append(times._on_gc)
    times.threads[threading.get_native_id()] = threading.current_thread().name

    def name_thread(*_: object) -> None:
        # A thread started by `threading` calls this first (threading.setprofile), once: every
        # Python thread gets its name in the file, those that enter no stage too (the asyncio
        # executor's that fsync the spool, the monitor's) and those that ended before the exit.
        times.threads[threading.get_native_id()] = threading.current_thread().name
        sys.setprofile(None)

    threading.setprofile(name_thread)

    def write() -> None:
        stages = {"wall": times.wall, "cpu": times.cpu, "passes": times.passes}
        gc_times = {"gc_cpu": times.gc_cpu, "gc_runs": times.gc_runs}
        threads = {"threads": times.threads, "thread_cpu": times.thread_cpu}
        path.write_text(json.dumps({**stages, **gc_times, **threads}))

    atexit.register(write)


if os.environ.get("ASSAY_STAGE_TIMES"):
    _measure_until_exit(Path(os.environ["ASSAY_STAGE_TIMES"]))
