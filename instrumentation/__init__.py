"""LLM-call instrumentation: OpenTelemetry spans for every LLM client call.

One line sets everything up::

    import assay.instrumentation.auto          # or:
    from assay.instrumentation import instrument
    instrument(service_name="checkout")

Spans go over OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT` (gRPC to http://localhost:4317 by
default; `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` for HTTP, default
http://localhost:4318). `ASSAY_CAPTURE_CONTENT=false` keeps prompts and responses off
the spans. `with context(user_id=..., session_id=...)` stamps every LLM span inside it.

Spans are batched: short-lived processes are flushed at interpreter exit (for at most
`ASSAY_EXIT_FLUSH_TIMEOUT`, 5 s), so are `multiprocessing` children forked after
`instrument()`, and `force_flush()` sends what is pending at any other moment (e.g. at the end
of a serverless handler, whose process may be frozen rather than exited).

Importing this package is cheap: the SDK, the exporters and the client libraries are
imported only by `instrument()`.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assay.instrumentation._context import CallContext, context
from assay.instrumentation._flush import (
    flush_as_forked_children_exit,
    flush_within,
    shutdown_within,
)
from assay.instrumentation.config import exit_flush_timeout_from_env
from assay.instrumentation.feedback import feedback

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.trace import TracerProvider

__all__ = [
    "CallContext",
    "context",
    "feedback",
    "force_flush",
    "instrument",
    "uninstrument",
]

logger = logging.getLogger("assay.instrumentation")

DEFAULT_FLUSH_TIMEOUT_MILLIS = 5000


@dataclass(frozen=True)
class _Setup:
    provider: TracerProvider
    # The exporter Assay added, None when it reused a provider (the user's or one passed in).
    exporter: SpanExporter | None


_lock = threading.Lock()
_setup: _Setup | None = None
_atexit_registered = False
# The batch processor Assay added to a provider it set up: the exit flush shuts it down within
# its time bound. None when Assay reused a provider (the user's own is flushed, not shut down).
_exit_processor: BatchSpanProcessor | None = None


def instrument(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    capture_content: bool | None = None,
    tracer_provider: TracerProvider | None = None,
) -> TracerProvider:
    """Instrument every supported LLM client installed; returns the tracer provider in use.

    Idempotent: later calls return the provider of the first one until `uninstrument()`.

    - `tracer_provider`: instrument with it, and leave the global provider alone.
    - Otherwise a global SDK provider that is already set is reused as is (no second
      exporter). Failing that, Assay sets one up: resource from `service_name` (else
      `OTEL_SERVICE_NAME`) and `OTEL_RESOURCE_ATTRIBUTES`, a batch processor, and an
      OTLP exporter. `protocol` (else `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`,
      `OTEL_EXPORTER_OTLP_PROTOCOL`) is `grpc` (default) or `http/protobuf`.
      `endpoint` is a base URL like `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is
      appended for HTTP); without it the exporter reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
      / `OTEL_EXPORTER_OTLP_ENDPOINT`. `headers` default to `OTEL_EXPORTER_OTLP_HEADERS`.
    - `capture_content`: put prompts and responses on spans; default `ASSAY_CAPTURE_CONTENT`
      (true).
    """
    global _setup
    with _lock:
        if _setup is not None:
            return _setup.provider
        exporter: SpanExporter | None = None
        processor: BatchSpanProcessor | None = None
        if tracer_provider is None:
            tracer_provider, processor = _global_provider(service_name, endpoint, protocol, headers)
            if processor is not None:
                exporter = _otlp_exporter_of(processor)
        _instrument_clients(tracer_provider, capture_content)
        _setup = _Setup(tracer_provider, exporter)
        _register_exit_flush(processor)
        return tracer_provider


def uninstrument() -> None:
    """Undo `instrument()`: client methods are restored. The tracer provider is kept."""
    global _setup
    with _lock:
        for instrumentor in _installed_instrumentors():
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        _setup = None


def force_flush(timeout_millis: int = DEFAULT_FLUSH_TIMEOUT_MILLIS) -> bool:
    """Export every finished span now; False if that did not complete within the timeout.

    Returns by the timeout whatever the collector does (the SDK's own flush ignores it); an
    export still under way then goes on in the background.
    """
    provider = _setup.provider if _setup is not None else None
    if provider is None:
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is None:  # the API's default provider holds nothing to flush
        return True
    return flush_within(lambda: flush(timeout_millis), timeout_millis / 1000)


def _installed_instrumentors() -> list[BaseInstrumentor]:
    """The instrumentors of the client libraries installed (singletons: the same each time)."""
    from assay.instrumentation.providers.package import INSTRUMENTORS

    found = []
    for library, target in INSTRUMENTORS:
        # A client library that is not installed is skipped silently: not every service uses all.
        try:
            installed = importlib.util.find_spec(library) is not None
        except (ImportError, ValueError):  # a dotted name whose parent package is missing
            installed = False
        if not installed:
            logger.debug("%s is not installed; not instrumenting it", library)
            continue
        module_name, class_name = target.split(":")
        try:
            found.append(getattr(importlib.import_module(module_name), class_name)())
        except Exception:  # an Assay bug must not stop the application or the other clients
            logger.warning("Assay could not load %s", target, exc_info=True)
    return found


def _instrument_clients(tracer_provider: TracerProvider, capture_content: bool | None) -> None:
    for instrumentor in _installed_instrumentors():
        if instrumentor.is_instrumented_by_opentelemetry:  # e.g. by `opentelemetry-instrument`
            continue
        try:
            instrumentor.instrument(
                tracer_provider=tracer_provider, capture_content=capture_content
            )
        except Exception:
            # One broken client library (an unsupported version) must not stop the others.
            logger.warning(
                "Assay could not instrument %s", type(instrumentor).__name__, exc_info=True
            )


def _global_provider(
    service_name: str | None,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
) -> tuple[TracerProvider, BatchSpanProcessor | None]:
    """The global provider: one set up with Assay's batch processor (returned), else the one
    already set (and None)."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from assay.instrumentation._export import SizeBoundedExporter

    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        # Someone set a global provider already (the user, `opentelemetry-instrument`):
        # adding our exporter to it would send every span twice.
        return current, None

    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    provider = SDKTracerProvider(resource=resource)

    def exporter() -> SpanExporter:
        return _otlp_exporter(endpoint, protocol, headers)

    processor = BatchSpanProcessor(SizeBoundedExporter(exporter(), renew=exporter))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider(), processor


def _otlp_exporter_of(processor: BatchSpanProcessor) -> SpanExporter:
    """The OTLP exporter inside the `SizeBoundedExporter` of the processor Assay added."""
    from assay.instrumentation._export import SizeBoundedExporter

    bounded = processor.span_exporter
    return bounded.exporter if isinstance(bounded, SizeBoundedExporter) else bounded


def _otlp_exporter(
    endpoint: str | None, protocol: str | None, headers: Mapping[str, str] | None
) -> SpanExporter:
    protocol = (
        (
            protocol
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        )
        .strip()
        .lower()
    )
    header_dict = dict(headers) if headers is not None else None
    if protocol.startswith("http"):
        if protocol != "http/protobuf":
            logger.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        return HTTPSpanExporter(endpoint=_http_traces_url(endpoint), headers=header_dict)
    if protocol != "grpc":
        logger.warning("OTLP protocol %r is not supported; using grpc", protocol)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GRPCSpanExporter,
    )

    return GRPCSpanExporter(endpoint=endpoint, headers=header_dict)


def _http_traces_url(endpoint: str | None) -> str | None:
    """`endpoint` as a base URL gets the traces path; None lets the exporter read the env."""
    if not endpoint:
        return None
    if endpoint.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _register_exit_flush(processor: BatchSpanProcessor | None = None) -> None:
    """Flush at interpreter exit and as a `multiprocessing` child exits; `processor`, the batch
    processor Assay added, is shut down then (within the exit's time bound)."""
    global _atexit_registered, _exit_processor
    if processor is not None:
        _exit_processor = processor
    if not _atexit_registered:
        # Registered after the SDK provider's own exit handler, so it runs first (atexit runs
        # handlers last in, first out): the SDK's shutdown then finds nothing left to wait for.
        atexit.register(_flush_at_exit)
        flush_as_forked_children_exit(_flush_at_exit)
        _atexit_registered = True


def _flush_at_exit() -> None:
    # Scripts and serverless functions exit before the batch processor's next export. A
    # collector that is down must not hold the exit up: the flush is bounded.
    timeout_s = exit_flush_timeout_from_env()
    try:
        if _exit_processor is not None:
            unsent = shutdown_within(_exit_processor, timeout_s)
            if unsent:
                logger.warning(
                    "Assay dropped %d spans at exit: the collector did not take them within "
                    "%g s (ASSAY_EXIT_FLUSH_TIMEOUT)",
                    unsent,
                    timeout_s,
                )
        elif not force_flush(int(timeout_s * 1000)):
            logger.warning(
                "Assay could not flush every span at exit within %g s (ASSAY_EXIT_FLUSH_TIMEOUT)",
                timeout_s,
            )
    except Exception:
        logger.warning("Assay could not flush spans at exit", exc_info=True)
