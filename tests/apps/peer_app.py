"""One OpenAI chat call made under a chosen instrumentation, exported over OTLP/HTTP.

    python peer_app.py PEER     PEER: assay | openllmetry | openinference | openai-v2 | openlit

Run by the interop tests in each peer's own venv (the peers pin conflicting OpenTelemetry
versions), so it imports nothing of Assay unless PEER is `assay`. Reads ASSAY_TEST_BASE_URL (the
fake OpenAI server), OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME; with `anthropic` as a
second argument it also makes one Anthropic call against ASSAY_TEST_ANTHROPIC_URL.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]
MODEL = "gpt-4o-mini"


def _sdk_providers() -> tuple[Any, ...]:
    """Tracer, meter and logger providers exporting over OTLP/HTTP, set as the globals."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    from opentelemetry import metrics
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    # Exported once, at shutdown: the GenAI client metrics the instrumentations record.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    try:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    except ImportError:
        return tracer_provider, meter_provider
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(logger_provider)
    return tracer_provider, meter_provider, logger_provider


def instrument(peer: str) -> list[Any]:
    """Set up `peer`'s instrumentation; returns the providers to flush at the end."""
    if peer == "assay":
        from assay.instrumentation import instrument as assay_instrument

        assay_instrument()
        return []
    providers = _sdk_providers()
    if peer == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()
        AnthropicInstrumentor().instrument()
    elif peer == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        OIInstrumentor().instrument()
    elif peer == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2Instrumentor

        V2Instrumentor().instrument()
    elif peer == "openlit":
        import openlit

        # Its own exporter setup is bypassed: it reuses the SDK tracer provider already set.
        openlit.init(
            disable_metrics=True,
            capture_message_content=True,
            disabled_instrumentors=_openlit_others(),
        )
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    return list(providers)


def _openlit_others() -> list[str]:
    import openlit

    known = getattr(openlit, "MODULE_NAME_MAP", {}) or {}
    return [name for name in known if name != "openai"]


def main() -> None:
    peer = sys.argv[1]
    providers = instrument(peer)
    import openai

    client = openai.OpenAI(base_url=os.environ["ASSAY_TEST_BASE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    if "anthropic" in sys.argv[2:]:
        import anthropic

        claude = anthropic.Anthropic(
            base_url=os.environ["ASSAY_TEST_ANTHROPIC_URL"], api_key="k", max_retries=0
        )
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            system=MESSAGES[0]["content"],
            messages=MESSAGES[1:],  # type: ignore[arg-type]
        )
    if peer == "assay":
        from assay.instrumentation import force_flush

        force_flush()
    for provider in providers:
        provider.shutdown()  # flushes what is left (metrics: their one export)


if __name__ == "__main__":
    main()
