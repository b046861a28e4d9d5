"""Traces of an experiment: Assay's instrumentation turned on, one root span per item, and a
tally of the LLM usage (tokens, cost, model) each item's task spent, read off its LLM spans."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from assay.instrumentation import instrument
from assay.instrumentation import semconv as sc

__all__ = ["ItemUsage", "UsageTally", "experiment_tracer"]

SERVICE_NAME = "assay-experiments"  # when the process has no service name of its own
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass
class ItemUsage:
    calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    unpriced_calls: int = 0  # LLM calls without a cost (pricing.UNPRICED_CALLS)
    unpriced_failed: int = 0  # those of them that failed (rarely billed)
    model: str = ""


def _add(total: int | float | None, value: Any) -> Any:
    if value is None:
        return total
    return value if total is None else total + value


class UsageTally(SpanProcessor):
    """Adds up the LLM spans stamped with an experiment id, per trace: each run of an item
    (each repetition) is a trace of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, ItemUsage] = {}

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        if not attributes.get(sc.EXPERIMENT_ID) or sc.OPERATION_NAME not in attributes:
            return
        if span.context is None or not span.context.is_valid:
            return
        trace_id = format(span.context.trace_id, "032x")
        with self._lock:
            usage = self._usage.setdefault(trace_id, ItemUsage())
            usage.calls += 1
            usage.input_tokens = _add(usage.input_tokens, attributes.get(sc.USAGE_INPUT_TOKENS))
            usage.output_tokens = _add(usage.output_tokens, attributes.get(sc.USAGE_OUTPUT_TOKENS))
            cost = attributes.get(sc.COST_USD)
            usage.cost_usd = _add(usage.cost_usd, cost)
            if cost is None:
                usage.unpriced_calls += 1
                usage.unpriced_failed += span.status.status_code is StatusCode.ERROR
            model = attributes.get(sc.RESPONSE_MODEL) or attributes.get(sc.REQUEST_MODEL)
            if model:
                usage.model = str(model)

    def take(self, trace_id: str) -> ItemUsage:
        """The usage of one item run's trace (and forget it)."""
        with self._lock:
            return self._usage.pop(trace_id, ItemUsage())

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_tallies: dict[int, UsageTally] = {}
_tallies_lock = threading.Lock()


def _tally_for(provider: Any) -> UsageTally | None:
    """One tally per SDK tracer provider (another provider type cannot take a processor)."""
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return None
    with _tallies_lock:
        tally = _tallies.get(id(provider))
        if tally is None:
            tally = _tallies[id(provider)] = UsageTally()
            add(tally)
        return tally


def experiment_tracer(collector_url: str) -> tuple[trace.Tracer, UsageTally | None]:
    """Instrumentation on (if the process has not turned it on), a tracer for the item spans.

    Without an OTLP endpoint in the environment, spans go over OTLP/HTTP to the collector the
    experiment is recorded in, which serves OTLP on the same port as its API (with `ASSAY_TOKEN`
    as the bearer token unless `OTEL_EXPORTER_OTLP_HEADERS` says otherwise).
    """
    configured = any(os.environ.get(name) for name in _OTLP_ENDPOINT_VARIABLES)
    token = os.environ.get("ASSAY_TOKEN")
    headers = None
    if not configured and token and not os.environ.get("OTEL_EXPORTER_OTLP_HEADERS"):
        headers = {"Authorization": f"Bearer {token}"}
    provider = instrument(
        service_name=os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME,
        endpoint=None if configured else collector_url,
        protocol=None if configured else "http/protobuf",
        headers=headers,
    )
    return provider.get_tracer("assay.evaluators"), _tally_for(provider)
