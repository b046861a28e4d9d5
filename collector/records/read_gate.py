"""How many of the UI's and the JSON API's own reads run at once, on which threads, with which
limits.

Each read (one store call of a page or an answer) runs on a pool of its own at the lowest CPU
priority, as `/api/query`'s do, with ClickHouse enforcing ReadLimits on every query it sends
(store/reading.py): a text search over millions of calls, or many of them at once, cannot take
the CPU that ingestion needs, nor the default executor that the receivers' work shares. Unlike
a person's SQL, a read past the concurrency waits for a slot (a page asks for several reads,
and a person clicking should not be refused because a colleague's page is loading), but only
`queue` of them wait, each no longer than what is left of its request's read time limit:
beyond, ReadsBusy."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from assay.collector.settings import CollectorSettings
from assay.collector.store.reading import ReadLimits, bounded, lower_priority

T = TypeVar("T")
RETRY_AFTER_S = 2


class ReadsBusy(Exception):
    """No slot came free in time, or too many reads wait already; the message says which."""


def read_limits(settings: CollectorSettings) -> ReadLimits:
    return ReadLimits(
        timeout_s=settings.read_timeout_s,
        max_memory_bytes=settings.read_max_memory_bytes,
        max_threads=settings.read_max_threads,
        max_result_rows=settings.read_max_result_rows,
        max_result_bytes=settings.read_max_result_bytes,
    )


class ReadGate:
    def __init__(self, limits: ReadLimits, concurrency: int, queue: int) -> None:
        self.limits = limits
        self.concurrency = concurrency
        self.queue = queue
        self._waiting = 0  # touched on the event loop only
        self._slots: asyncio.Semaphore | None = None
        self._pool = ThreadPoolExecutor(
            concurrency, thread_name_prefix="assay-read", initializer=lower_priority
        )

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> ReadGate:
        return cls(read_limits(settings), settings.read_concurrency, settings.read_queue)

    async def run(self, read: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """`read(*args)` on a read thread, its queries bounded, none past `deadline` (monotonic
        seconds; else each has the read time limit). ReadsBusy when it cannot start by then (or
        within the time limit), or when `queue` reads wait already; ReadLimitExceeded when one
        of its queries goes past a limit."""
        if deadline is None:
            deadline = time.monotonic() + self.limits.timeout_s
        if self._slots is None:  # made on the loop that serves the requests
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots
        if slots.locked():
            if self._waiting >= self.queue:
                raise ReadsBusy(
                    f"the collector is running {self.concurrency} reads (read_concurrency) and "
                    f"{self._waiting} more wait (read_queue): try again in a moment"
                )
            self._waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise ReadsBusy(
                    f"no read slot came free within {self.limits.timeout_s:g} s (read_timeout_s;"
                    f" the collector runs {self.concurrency} reads at once, read_concurrency): "
                    "try again in a moment"
                ) from None
            finally:
                self._waiting -= 1
        else:
            await slots.acquire()
        loop = asyncio.get_running_loop()
        try:
            future = self._pool.submit(self._bounded, functools.partial(read, *args), deadline)
        except BaseException:
            slots.release()
            raise
        # The slot is free again when the read ends, not when the request does: a client that
        # hangs up leaves its read running until its time limit, and it still counts.
        future.add_done_callback(lambda _: self._release(loop, slots))
        return await asyncio.wrap_future(future)

    @staticmethod
    def _release(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the collector is stopping
            loop.call_soon_threadsafe(slots.release)

    def _bounded(self, read: Callable[[], T], deadline: float) -> T:
        with bounded(self.limits, deadline):
            return read()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def stored(request: Request, read: Callable[..., T], *args: Any) -> T:
    """`read(store, *args)` through the app's ReadGate. All the reads of one request share the
    read time limit, counted from the first: a page of several reads is answered (or says it
    could not be) within it, however many there are and however long they wait."""
    state = request.app.state
    gate: ReadGate = state.read_gate
    if getattr(request.state, "read_deadline", None) is None:
        request.state.read_deadline = time.monotonic() + gate.limits.timeout_s
    return await gate.run(read, state.store, *args, deadline=request.state.read_deadline)
