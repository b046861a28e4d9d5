"""A collector served in this process (real receivers on loopback) around a store we can break."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assay.collector.service import Endpoints, serve
from assay.collector.settings import CollectorSettings
from tests import tiers
from tests.faults import FaultyStore


def quick_settings(folder: Path, **overrides: Any) -> CollectorSettings:
    """A collector on `folder`: free ports, a spool of its own, flushes and retries in tens of
    milliseconds so that outages and recoveries show within a test."""
    base: dict[str, Any] = {
        "grpc_port": 0,
        "http_port": 0,
        "storage": folder,
        "spool_dir": folder / "spool",
        "flush_interval": 0.05,
        "retry_initial": 0.05,
        "retry_max": 0.3,
    }
    return CollectorSettings(**(base | overrides))


@contextmanager
def serving(settings: CollectorSettings, store: FaultyStore) -> Iterator[Endpoints]:
    tiers.require_tier("integration", "serves a collector")
    ready: list[Endpoints] = []
    started = threading.Event()
    loop_box: list[asyncio.AbstractEventLoop] = []
    stop_box: list[asyncio.Event] = []
    failure: list[BaseException] = []

    async def main() -> None:
        loop_box.append(asyncio.get_running_loop())
        stop_box.append(asyncio.Event())

        def on_ready(endpoints: Endpoints) -> None:
            ready.append(endpoints)
            started.set()

        await serve(settings, on_ready=on_ready, stop=stop_box[0], store=store)  # type: ignore[arg-type]

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30) and not failure, failure
    try:
        yield ready[0]
    finally:
        loop_box[0].call_soon_threadsafe(stop_box[0].set)
        thread.join(60)
