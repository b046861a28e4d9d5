"""`assay collector --workers N`: N collector processes sharing the ports on one machine.

Each worker is a whole collector (`python -m assay.collector collector ...` with the same
flags) bound with SO_REUSEPORT, so the kernel spreads connections over them; each has its own
spool folder and instance name, and they write to the same ClickHouse server (the embedded
store belongs to one process, so workers need a server). The schema is migrated once, here,
before they start. This process forwards SIGTERM/SIGINT to the workers and restarts one that
dies, so a crash costs only that worker's unacknowledged requests (its spool replays).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from assay.collector.monitoring import instance_name
from assay.collector.private import private_folder
from assay.collector.settings import CollectorSettings, spool_folder

log = logging.getLogger("assay.collector.workers")
RESTART_DELAY = 1.0


def check_workers(settings: CollectorSettings, workers: int) -> None:
    """Raises ValueError when `workers` processes cannot share this configuration."""
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    if workers == 1:
        return
    if not settings.clickhouse_url:
        raise ValueError(
            "--workers needs a ClickHouse server (--clickhouse-url): the embedded store's "
            "folder belongs to a single process"
        )
    if settings.grpc_port == 0 or settings.http_port == 0:
        raise ValueError("--workers needs fixed ports (not 0): the workers share them")


def worker_environment(settings: CollectorSettings, index: int) -> dict[str, str]:
    """What makes worker `index` one of several: shared ports, its own spool and name."""
    instance = instance_name(settings, settings.grpc_port)
    return {
        "ASSAY_REUSE_PORT": "true",
        "ASSAY_SPOOL_DIR": str(spool_folder(settings) / f"worker-{index}"),
        "ASSAY_INSTANCE": f"{instance}/{index}",
    }


def run_workers(settings: CollectorSettings, workers: int, arguments: list[str]) -> int:
    """Run `workers` collectors with the command-line `arguments` (without --workers) until
    SIGTERM/SIGINT; return the exit code."""
    from assay.collector.store import open_store

    store = open_store(settings.store)
    try:
        applied = store.migrate()  # once, before the workers race to do it
        if applied:
            log.info("schema migrations applied: %s", ", ".join(applied))
    finally:
        store.close()

    stopping = threading.Event()
    command = [sys.executable, "-m", "assay.collector", "collector", *arguments]

    def start(index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **worker_environment(settings, index)}
        private_folder(Path(env["ASSAY_SPOOL_DIR"]))
        return subprocess.Popen(command, env=env)

    processes = {index: start(index) for index in range(workers)}
    log.info("%d collector workers on ports %d/%d", workers, settings.grpc_port, settings.http_port)

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not stopping.is_set():
        for index, process in list(processes.items()):
            code = process.poll()
            if code is not None and not stopping.is_set():
                log.error("worker %d exited with %d; restarting it", index, code)
                time.sleep(RESTART_DELAY)
                processes[index] = start(index)
        stopping.wait(0.5)
    codes = [process.wait() for process in processes.values()]
    return max(codes, default=0)
