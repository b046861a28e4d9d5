"""Running the collector: store, pipeline, gRPC and HTTP servers in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import uvicorn

from assay.collector import price_tables
from assay.collector.app import build_http_app
from assay.collector.auth import TokenCheck
from assay.collector.completed_runs import CompletedRuns
from assay.collector.deadletter import DeadLetter
from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.online import OnlineEvaluation
from assay.collector.evaluation.rules import compile_rules
from assay.collector.evaluation.runs import RunEvaluation
from assay.collector.folder_lock import FolderLock
from assay.collector.http_protocol import header_deadline_protocol
from assay.collector.monitoring import Monitor
from assay.collector.older_spans import OlderSpans
from assay.collector.pipeline import Pipeline
from assay.collector.private import restrict_new_files
from assay.collector.receivers.grpc import build_grpc_server
from assay.collector.retention import apply_retention, kept_seconds
from assay.collector.settings import (
    CollectorSettings,
    deadletter_folder,
    listen_host,
    spool_folder,
)
from assay.collector.spool import DiskSpool, MemorySpool, Spool
from assay.collector.store import open_store
from assay.collector.store.base import ClickHouseStore
from assay.collector.tls import load_server_tls

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
    tls: bool = False

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        # The OTLP exporters take https:// as "use TLS" for gRPC too.
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.grpc_port}"


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the collector shuts everything down in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def open_spool(settings: CollectorSettings) -> Spool:
    if settings.spool == "memory":
        return MemorySpool(
            settings.max_spool_bytes, settings.segment_bytes, settings.flush_interval
        )
    return DiskSpool(
        spool_folder(settings),
        settings.max_spool_bytes,
        settings.segment_bytes,
        settings.flush_interval,
        settings.fsync,
        settings.fsync_interval,
    )


def _bind_http(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """Bind the HTTP socket ourselves, so a taken port is a clear error before anything starts.

    With `reuse_port`, the kernel spreads connections over every process bound to the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    settings: CollectorSettings,
    on_ready: Callable[[Endpoints], None] | None = None,
    stop: asyncio.Event | None = None,
    store: ClickHouseStore | None = None,
    evaluation: EvaluationConfig | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then stop accepting and flush.

    `store` replaces the one the settings name (embedding the collector, fault injection);
    `evaluation` holds the online evaluation rules (the `evaluation:` section of assay.yaml).
    The process's umask becomes 077: the store and spool hold prompts (collector/private.py)."""
    restrict_new_files()
    evaluation = evaluation or EvaluationConfig()
    # Compiled first: a mistake in the rules is reported (RulesError) before any data is touched.
    rules = compile_rules(evaluation)
    if store is None:
        store = await asyncio.to_thread(open_store, settings.store)
    # Then the spool, once no other collector holds its folder: a segment this version cannot
    # read (SpoolFormatError) stops the start before the schema is migrated.
    spool_lock = None
    try:
        if settings.spool == "disk":
            spool_lock = FolderLock(spool_folder(settings), "spool", "ASSAY_SPOOL_DIR")
        spool = open_spool(settings)
    except BaseException:
        if spool_lock:
            spool_lock.release()
        store.close()
        raise
    try:
        applied = await asyncio.to_thread(store.migrate)
        if applied:
            log.info("schema migrations applied: %s", ", ".join(applied))
        await asyncio.to_thread(apply_retention, store, settings.retention, store.cluster)
        # Before the pipeline starts: every call is priced with the table in force.
        await asyncio.to_thread(price_tables.activate_from_store, store)
        online = OnlineEvaluation(evaluation, store, rules)
        online.start()
        runs = RunEvaluation(evaluation, store, rules)
        runs.start()
        completed = CompletedRuns(evaluation, store)
        completed.start()
        deadletter = DeadLetter(deadletter_folder(settings), settings.max_deadletter_bytes)
        kept = await asyncio.to_thread(kept_seconds, store, store.cluster)
        pipeline = Pipeline(store, spool, settings, online, deadletter, kept)
        pipeline.start()
        older = OlderSpans(store, spool.replaying)
        older.start()
        monitor = Monitor(store, pipeline, settings, assay_version())
        try:
            await _serve(settings, store, pipeline, monitor, on_ready, stop or asyncio.Event())
        finally:
            # Whatever was accepted gets written before the store closes.
            await asyncio.to_thread(older.stop)
            await asyncio.to_thread(pipeline.stop)
            await asyncio.to_thread(online.stop)
            await asyncio.to_thread(runs.stop)
            await asyncio.to_thread(completed.stop)
            await asyncio.to_thread(monitor.stop)
    finally:
        spool.close()  # already closed, unless the start failed before the writer ran
        if spool_lock:
            spool_lock.release()
        store.close()
    log.info("collector stopped")


async def _serve(
    settings: CollectorSettings,
    store: ClickHouseStore,
    pipeline: Pipeline,
    monitor: Monitor,
    on_ready: Callable[[Endpoints], None] | None,
    stop: asyncio.Event,
) -> None:
    tls = load_server_tls(settings)
    host = listen_host(settings)
    if host != settings.host:
        log.warning(
            "no API token is set, so the UI and API would be open to anyone who reaches %s: "
            "listening on %s only. Set api_tokens (ASSAY_API_TOKENS) to serve %s, or "
            "open_without_token (ASSAY_OPEN_WITHOUT_TOKEN=true) on a private network.",
            settings.host,
            host,
            settings.host,
        )
    elif not settings.api_tokens:
        log.info("no API token is set: the UI and API are open to whoever reaches %s", host)
    http_socket = _bind_http(host, settings.http_port, settings.reuse_port)
    grpc_server, grpc_port = build_grpc_server(
        pipeline,
        host,
        settings.grpc_port,
        settings.max_request_bytes,
        TokenCheck(settings.otlp_tokens, "OTLP"),
        tls.grpc_credentials() if tls else None,
        settings.reuse_port,
    )
    app = build_http_app(store, pipeline, settings, assay_version())
    app.state.monitor = monitor
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=header_deadline_protocol(settings.http_header_timeout_s),
        timeout_graceful_shutdown=5,
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
    )
    http_server = _Server(config)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    await grpc_server.start()
    http_task = asyncio.create_task(http_server.serve(sockets=[http_socket]))
    while not http_server.started and not http_task.done():
        await asyncio.sleep(0.02)
    http_port = http_socket.getsockname()[1]
    monitor.start(grpc_port)
    endpoints = Endpoints(grpc_port=grpc_port, http_port=http_port, host=host, tls=tls is not None)
    where = settings.clickhouse_url.split("@")[-1] if settings.clickhouse_url else settings.storage
    log.info(
        "collector %s: OTLP gRPC on %s%s:%d, OTLP HTTP, API and UI on %s; storage %s (%s); "
        "tokens required for OTLP: %s, for the API: %s",
        assay_version(),
        "grpcs://" if tls else "",
        host,
        grpc_port,
        endpoints.http_url,
        where,
        store.kind,
        "yes" if settings.otlp_tokens else "no",
        "yes" if settings.api_tokens else "no",
    )
    if on_ready:
        on_ready(endpoints)

    await stop.wait()
    log.info("shutting down: refusing new requests, flushing what was accepted")
    # Stop taking requests first (finishing those in flight); `serve` then drains the pipeline.
    await grpc_server.stop(grace=5)
    http_server.should_exit = True
    await http_task
    app.state.query_gate.close()  # queries still running end at their time limit
    app.state.read_gate.close()  # and reads at theirs
