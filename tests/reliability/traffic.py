"""Traffic for the fault-injection tests: numbered OTLP requests and a sender that records which
of them the collector acknowledged, refused or failed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass
class Batch:
    """`requests` requests of `spans` LLM spans each, for one service; span ids are known."""

    service: str
    requests: int
    spans: int
    content_bytes: int = 500
    bodies: list[bytes] = field(default_factory=list)
    span_ids: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for _ in range(self.requests):
            spans = [
                make_span(
                    attrs={
                        sc.REQUEST_MODEL: "gpt-4o-mini",
                        sc.OPERATION_NAME: "chat",
                        sc.INPUT_MESSAGES: "q" * self.content_bytes,
                    }
                )
                for _ in range(self.spans)
            ]
            self.span_ids.append([s.span_id.hex() for s in spans])
            self.bodies.append(make_request(self.service, *spans).SerializeToString())


@dataclass
class SendLog:
    acked: set[int] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)  # status code name → count
    slowest_reply_s: float = 0.0


def send(
    endpoint: str,
    batch: Batch,
    indices: list[int],
    log: SendLog,
    *,
    timeout: float = 10,
    retry_refused: bool = False,
    on_ack: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Send the requests at `indices` one after the other; never raises on RPC errors."""
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for index in indices:
            while not (stop and stop.is_set()):
                started = time.monotonic()
                try:
                    export(batch.bodies[index], timeout=timeout, wait_for_ready=False)
                    log.acked.add(index)
                    if on_ack:
                        on_ack(index)
                    break
                except grpc.RpcError as exc:
                    log.refused[exc.code().name] += 1
                    if not (retry_refused and exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED):
                        break
                    time.sleep(0.05)
                finally:
                    log.slowest_reply_s = max(log.slowest_reply_s, time.monotonic() - started)
