"""The UI's and API's own reads are bounded: each query carries ClickHouse's limits (time,
memory, threads, result size, the lowest CPU priority), a query past one fails with a message
naming the limit, and only `concurrency` reads run at once, `queue` more waiting at most the
read time limit, the rest refused at once."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assay.collector.api.encoding import found_response
from assay.collector.records.read_gate import (
    RETRY_AFTER_S,
    ReadGate,
    ReadsBusy,
    read_limits,
    stored,
)
from assay.collector.settings import CollectorSettings
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.reading import QUERY_NICE, ReadLimitExceeded
from assay.collector.ui.pages import ui_endpoint

LIMITS = read_limits(CollectorSettings())
SETTINGS_NOW = (
    "SELECT getSetting('max_execution_time'), getSetting('max_result_rows'),"
    " getSetting('max_threads'), getSetting('os_thread_priority')"
)
# Many seconds of work on one thread, whatever the machine.
SLOW = "SELECT count() FROM numbers(10000000000) WHERE sipHash64(number) % 7 = 8"


def run(gate: ReadGate, read: object, *args: object) -> object:
    async def go() -> object:
        return await gate.run(read, *args)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_a_read_carries_the_limits_and_nothing_else_does(embedded_store: EmbeddedStore) -> None:
    gate = ReadGate(replace(LIMITS, timeout_s=7, max_result_rows=1234), 1, 0)
    try:
        _, rows = run(gate, embedded_store.query, SETTINGS_NOW)  # type: ignore[misc]
    finally:
        gate.close()
    ((timeout, max_rows, threads, nice),) = rows
    assert 0 < timeout <= 7  # the time left of the read's 7 s when the query started
    assert (max_rows, threads, nice) == (1234, 1, QUERY_NICE)
    # The writer's and every other query of the process, on any thread, are not bounded.
    _, rows = embedded_store.query(SETTINGS_NOW)
    assert rows[0][0] == 0 and rows[0][1] == 0 and rows[0][3] == 0


def test_a_read_within_the_limits_is_answered_whole(embedded_store: EmbeddedStore) -> None:
    gate = ReadGate(replace(LIMITS, max_result_rows=1000), 2, 4)
    try:
        _, rows = run(gate, embedded_store.query, "SELECT number FROM numbers(1000)")  # type: ignore[misc]
    finally:
        gate.close()
    assert len(rows) == 1000


def test_a_read_past_its_time_limit_is_stopped_saying_so(embedded_store: EmbeddedStore) -> None:
    gate = ReadGate(replace(LIMITS, timeout_s=0.3), 1, 0)
    try:
        with pytest.raises(ReadLimitExceeded, match="read_timeout_s") as raised:
            run(gate, embedded_store.query, SLOW)
    finally:
        gate.close()
    assert "0.3 s" in str(raised.value) and "Code:" not in str(raised.value)


def test_an_answer_past_its_row_limit_is_refused_not_cut(embedded_store: EmbeddedStore) -> None:
    gate = ReadGate(replace(LIMITS, max_result_rows=100), 1, 0)
    try:
        with pytest.raises(ReadLimitExceeded, match="read_max_result_rows"):
            run(gate, embedded_store.query, "SELECT number FROM numbers(1000)")
    finally:
        gate.close()


def test_a_read_past_its_memory_limit_is_stopped_saying_so(embedded_store: EmbeddedStore) -> None:
    gate = ReadGate(replace(LIMITS, max_memory_bytes=2**24), 1, 0)
    hungry = "SELECT length(groupArray(number)) FROM numbers(100000000)"
    try:
        with pytest.raises(ReadLimitExceeded, match="read_max_memory_bytes"):
            run(gate, embedded_store.query, hungry)
    finally:
        gate.close()


def test_reads_past_the_concurrency_wait_in_a_bounded_queue() -> None:
    """One slot, one place in the queue: the second read waits for the first, the third is
    refused at once, and the second runs when the first ends."""
    gate = ReadGate(replace(LIMITS, timeout_s=60), 1, 1)
    release = threading.Event()
    started = threading.Event()
    order: list[str] = []

    def hold(name: str) -> str:
        started.set()
        release.wait(60)
        order.append(name)
        return name

    def quick(name: str) -> str:
        order.append(name)
        return name

    async def go() -> tuple[object, ...]:
        first = asyncio.ensure_future(gate.run(hold, "first"))
        await asyncio.to_thread(started.wait, 60)
        second = asyncio.ensure_future(gate.run(quick, "second"))
        await asyncio.sleep(0)  # the second is waiting for the slot now
        with pytest.raises(ReadsBusy, match="read_queue"):
            await gate.run(quick, "third")
        assert not second.done()
        release.set()
        return tuple(await asyncio.gather(first, second))

    try:
        assert asyncio.run(go()) == ("first", "second")
    finally:
        release.set()
        gate.close()
    assert order == ["first", "second"]


def test_a_read_waits_for_a_slot_at_most_the_read_time_limit() -> None:
    gate = ReadGate(replace(LIMITS, timeout_s=0.2), 1, 4)
    release = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(60)

    async def go() -> None:
        first = asyncio.ensure_future(gate.run(hold))
        await asyncio.to_thread(started.wait, 60)
        with pytest.raises(ReadsBusy, match="no read slot came free"):
            await gate.run(lambda: None)
        release.set()
        await first
        assert await gate.run(lambda: "free again") == "free again"  # the slot came back

    try:
        asyncio.run(go())
    finally:
        release.set()
        gate.close()


def test_a_busy_gate_is_a_503_with_retry_after_on_the_api_and_the_ui() -> None:
    """While the one slot is held and no read may wait, an API answer and a UI page (as its
    script asks for it, JSON) are refused at once, saying why."""
    gate = ReadGate(replace(LIMITS, timeout_s=60), 1, 0)
    release = threading.Event()
    started = threading.Event()

    def hold(_: object) -> None:
        started.set()
        release.wait(60)

    async def api_read(request: Request) -> Response:
        return await found_response(request, "none", lambda _: 1)

    @ui_endpoint
    async def ui_read(request: Request) -> Response:
        await stored(request, lambda _: None)
        return Response("never")

    app = Starlette(
        routes=[
            Route("/api/thing", api_read),
            Route("/ui/thing", ui_read),
        ]
    )
    app.state.store = "the store"
    app.state.read_gate = gate

    async def go() -> list[httpx.Response]:
        held = asyncio.ensure_future(stored_by(app, hold))
        await asyncio.to_thread(started.wait, 60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [
                await client.get("/api/thing"),
                await client.get("/ui/thing", headers={"accept": "application/json"}),
            ]
        release.set()
        await held
        return answers

    try:
        answers = asyncio.run(go())
    finally:
        release.set()
        gate.close()
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
        assert "read_queue" in answer.json()["error"]


async def stored_by(app: Starlette, read: object) -> object:
    gate: ReadGate = app.state.read_gate
    return await gate.run(read, app.state.store)  # type: ignore[arg-type]
