"""How many of the people's queries (`POST /api/query`) run at once, and on which threads.

They run on a pool of their own, never on the event loop's default pool: that one serves the
health check, the UI's reads and the spool's fsync before an OTLP request is acknowledged, so
slow queries holding its threads stalled all of them. Past the limit a query is refused at once
(429 with Retry-After) rather than queued: a queue of slow queries only grows. The threads run
at the lowest CPU priority, as do the engine's threads that execute the query."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from assay.collector.store.reading import lower_priority

T = TypeVar("T")
RETRY_AFTER_S = 1


class QueriesBusy(Exception):
    """Every slot is taken; the message says how many."""


class QueryGate:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._free = concurrency
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            concurrency, thread_name_prefix="assay-query", initializer=lower_priority
        )

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` on a query thread; QueriesBusy when `concurrency` queries are running."""
        with self._lock:
            if self._free == 0:
                raise QueriesBusy(
                    f"{self.concurrency} queries are running, the most this collector runs at "
                    "once (query_concurrency): retry when one has finished"
                )
            self._free -= 1
        future = self._pool.submit(work)
        # The slot is free again when the work ends, not when the request does: a client that
        # hangs up leaves its query running until its time limit, and it still counts.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._free += 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
