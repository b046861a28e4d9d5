"""The OTLP/gRPC receiver (trace, logs and metrics services) on grpc.aio."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc

from assay.collector.auth import TokenCheck
from assay.collector.normalize.otlp import InvalidRequest, read_protobuf
from assay.collector.pipeline import Overloaded, Pipeline
from assay.collector.receivers.intake import take
from assay.collector.stage_timing import stage

log = logging.getLogger("assay.collector.receivers")

_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    # gRPC metadata keys are lower case: OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer ..."
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _export_handler(
    pipeline: Pipeline, signal: str, auth: TokenCheck | None
) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
    async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if auth is not None and auth.enabled:
            reason = auth.refusal(_authorization(context))
            if reason is not None:
                pipeline.stats.refuse("unauthenticated")
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
        # The request arrives as raw bytes so that a malformed one is answered with
        # INVALID_ARGUMENT (grpc's own deserializer would answer INTERNAL).
        try:
            with stage("decode"):
                request, mended = read_protobuf(signal, body)
            response = await take(pipeline, signal, request, body, mended)
        except InvalidRequest as exc:
            pipeline.stats.refuse("invalid")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            # OTLP: RESOURCE_EXHAUSTED with RetryInfo is retryable; the SDK exporters back off.
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return bytes(response.SerializeToString())

    return export


def build_grpc_server(
    pipeline: Pipeline,
    host: str,
    port: int,
    max_request_bytes: int,
    auth: TokenCheck | None = None,
    credentials: grpc.ServerCredentials | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """A started-later grpc.aio server with the OTLP services; returns it and the bound port.

    `auth` checks the bearer token of every export; `credentials` make the port TLS;
    `reuse_port` lets several collector processes share the port (`--workers`)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    for signal, service in _SERVICES.items():
        handler = grpc.unary_unary_rpc_method_handler(
            _export_handler(pipeline, signal, auth),
            request_deserializer=None,
            response_serializer=None,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": handler}),)
        )
    try:
        address = f"{host}:{port}"
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc reports a taken port as RuntimeError("Failed to bind ...")
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    return server, bound
