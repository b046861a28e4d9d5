"""Running the collector: store, pipeline, gRPC and HTTP servers in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import uvicorn

from assay.collector.app import build_http_app
from assay.collector.pipeline import Pipeline
from assay.collector.receivers.grpc import build_grpc_server
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store

log = logging.getLogger("assay.collector")


def assay_version() -> str:
    try:
        return version("assay")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Endpoints:
    grpc_port: int
    http_port: int
    host: str

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.grpc_port}"


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the collector shuts everything down in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: CollectorSettings,
    on_ready: Callable[[Endpoints], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then stop accepting and flush."""
    store = await asyncio.to_thread(open_store, settings)
    applied = await asyncio.to_thread(store.migrate)
    if applied:
        log.info("schema migrations applied: %s", ", ".join(applied))
    pipeline = Pipeline(store, settings)
    pipeline.start()

    grpc_server, grpc_port = build_grpc_server(
        pipeline, settings.host, settings.grpc_port, settings.max_request_bytes
    )
    app = build_http_app(store, pipeline, settings, assay_version())
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    http_server = _Server(config)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    await grpc_server.start()
    http_task = asyncio.create_task(http_server.serve())
    while not http_server.started:
        if http_task.done():
            await grpc_server.stop(0)
            pipeline.stop()
            store.close()
            http_task.result()
            raise OSError(f"cannot listen for HTTP on {settings.host}:{settings.http_port}")
        await asyncio.sleep(0.02)
    http_port = http_server.servers[0].sockets[0].getsockname()[1]
    endpoints = Endpoints(grpc_port=grpc_port, http_port=http_port, host=settings.host)
    where = settings.clickhouse_url.split("@")[-1] if settings.clickhouse_url else settings.storage
    log.info(
        "collector %s: OTLP gRPC on %s:%d, OTLP HTTP + API on %s; storage %s (%s)",
        assay_version(),
        settings.host,
        grpc_port,
        endpoints.http_url,
        where,
        store.kind,
    )
    if on_ready:
        on_ready(endpoints)

    await stop.wait()
    log.info("shutting down: refusing new requests, flushing what was accepted")
    # Stop taking requests first (finishing those in flight), then drain the pipeline.
    await grpc_server.stop(grace=5)
    http_server.should_exit = True
    await http_task
    await asyncio.to_thread(pipeline.stop)
    store.close()
    log.info("collector stopped")
