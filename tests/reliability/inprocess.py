"""A collector served in this process (real receivers on loopback) around a store we can break."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from assay.collector.service import Endpoints, serve
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Inserted, StoreError
from assay.collector.store.embedded import EmbeddedStore


class BreakableStore:
    """The real embedded store behind a switch: while `down`, every write fails."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.down = False
        self.failed_writes = 0
        self.database, self.kind = store.database, store.kind

    def insert(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> Inserted:
        if self.down:
            self.failed_writes += 1
            raise StoreError("ClickHouse unreachable (injected)")
        return self.store.insert(table, columns, column_names, dedup_token)

    def ping(self) -> bool:
        return not self.down and self.store.ping()

    def migrate(self) -> list[str]:
        return self.store.migrate()

    def close(self) -> None:
        """The session owns the real store; the collector must not close it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@contextmanager
def serving(settings: CollectorSettings, store: BreakableStore) -> Iterator[Endpoints]:
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
