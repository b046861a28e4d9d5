"""One configuration of the overhead benchmark: N openai calls in this process, CPU per call.

Run by `bench/overhead.py` with the Python of the configuration's own virtual environment
(the peers' pins conflict), so it imports only the standard library, `openai` and the
OpenTelemetry SDK at the top; each configuration imports its instrumentation itself.

    python overhead_worker.py CONFIG BASE_URL --calls N [--batch-size B] [--memory]
                              [--otlp SINK_URL]

Prints one JSON object on stdout: per-batch process CPU per call (µs) for plain and
streamed calls, or with `--memory` the RSS samples of a long run; and what the start-up
cost: the CPU and wall time of importing the instrumentation, of setting it up, and the RSS
before, after the imports and after the set-up.

Spans go to an SDK `SimpleSpanProcessor` whose exporter drops them, or with `--otlp` to a
`BatchSpanProcessor` and the OTLP/HTTP protobuf exporter, posting to SINK_URL (a local server
that reads and discards the requests), as users run it. The batch processor exports from a
thread of its own: each timed batch of calls ends with `force_flush()`, so the encoding and
sending of its spans counts in it (process CPU counts every thread).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# Every configuration captures content; set before any instrumentation is imported.
os.environ.update(
    {
        "ASSAY_CAPTURE_CONTENT": "true",
        "TRACELOOP_TRACE_CONTENT": "true",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
    }
)

from openai import OpenAI
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

MODEL = "gpt-4o-mini"
MESSAGES = [
    {
        "role": "system",
        "content": "You are a support assistant for an online shop. Answer briefly and "
        "politely, and ask for the order number when it is missing.",
    },
    {
        "role": "user",
        "content": "My order from last Tuesday has not arrived yet and the tracking page "
        "shows no update since Friday. What can I do?",
    },
]


# A phrase of the user message: found on a span (or log record) proves content capture is on.
CONTENT_MARKER = "tracking page"
_CHECKED_ITEMS = 20  # only the first ones are searched, so the check costs nothing later


def _holds_content(attributes: Any) -> bool:
    return any(CONTENT_MARKER in str(value) for value in (attributes or {}).values())


class DroppingExporter(SpanExporter):
    """Receives every finished span and keeps none: the export costs nothing measurable."""

    def __init__(self) -> None:
        self.spans = 0
        self.content_seen = False

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.spans < _CHECKED_ITEMS and not self.content_seen:
            self.content_seen = any(
                _holds_content(span.attributes)
                or any(_holds_content(event.attributes) for event in span.events)
                for span in spans
            )
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class CountingProcessor(SpanProcessor):
    """Counts the spans that end (the OTLP setup's spans leave the process)."""

    def __init__(self) -> None:
        self.spans = 0

    def on_end(self, span: Any) -> None:
        self.spans += 1


def _provider(exporter: DroppingExporter, otlp: str | None) -> TracerProvider:
    provider = TracerProvider()
    if otlp is None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp}/v1/traces"))
        )
    # Global, so an instrumentation that looks it up (or reuses it, like OpenLIT) finds it.
    trace.set_tracer_provider(provider)
    return provider


def _setup_none(provider: TracerProvider) -> None:
    pass


def _setup_assay(provider: TracerProvider) -> None:
    from assay.instrumentation import instrument

    instrument(tracer_provider=provider, capture_content=True)


def _setup_span_floor(provider: TracerProvider) -> None:
    # The least any SDK-based instrumentation pays: one current span per call, no attributes.
    import wrapt
    from openai.resources.chat.completions import Completions

    tracer = provider.get_tracer("overhead-bench.floor")

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with tracer.start_as_current_span("chat"):
            return wrapped(*args, **kwargs)  # a stream's span ends before its chunks

    wrapt.wrap_function_wrapper(Completions, "create", traced)


def _setup_openllmetry(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)


def _setup_otel_v2(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)


def _openlit_init(**options: Any) -> None:
    import openlit

    # No OTLP endpoint: its metrics and log records go to in-memory sinks set up below.
    openlit.init(
        application_name="overhead-bench",
        environment="bench",
        capture_message_content=True,
        **options,
    )


def _drop_openlit_metrics_and_logs() -> None:
    # OpenLIT's defaults export metrics and events to the console without an endpoint; give
    # it SDK providers whose exporters drop everything, as the spans are dropped.
    from opentelemetry import _logs, metrics
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        LogExporter,
        LogExportResult,
        SimpleLogRecordProcessor,
    )
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    class _DropLogs(LogExporter):  # type: ignore[misc]
        def __init__(self) -> None:
            self.records = 0

        def export(self, batch: Any) -> Any:
            global _content_in_logs
            if self.records < _CHECKED_ITEMS and not _content_in_logs:
                _content_in_logs = any(
                    CONTENT_MARKER in str(getattr(item, "log_record", item).body)
                    or _holds_content(getattr(item, "log_record", item).attributes)
                    for item in batch
                )
            self.records += len(batch)
            return LogExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_DropLogs()))
    _logs.set_logger_provider(logger_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def _setup_openlit_default(provider: TracerProvider) -> None:
    _drop_openlit_metrics_and_logs()
    _openlit_init()


def _setup_openlit_best(provider: TracerProvider) -> None:
    # Its cheapest setup that still traces openai: that instrumentor only, no metrics, no events.
    import openlit

    _drop_openlit_metrics_and_logs()  # in case anything is still emitted

    everything_else = [name for name in getattr(openlit, "MODULE_NAME_MAP", {}) if name != "openai"]
    _openlit_init(
        disable_metrics=True,
        disable_events=True,
        disabled_instrumentors=everything_else,
    )


# What each configuration imports (timed apart from its set-up): its instrumentation.
IMPORTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "assay": ("assay.instrumentation",),
    "span-floor": ("wrapt",),
    "openllmetry": ("opentelemetry.instrumentation.openai",),
    "openlit-default": ("openlit",),
    "openlit-best": ("openlit",),
    "otel-v2": ("opentelemetry.instrumentation.openai_v2",),
}

SETUPS: dict[str, Callable[[TracerProvider], None]] = {
    "none": _setup_none,
    "assay": _setup_assay,
    "span-floor": _setup_span_floor,
    "openllmetry": _setup_openllmetry,
    "openlit-default": _setup_openlit_default,
    "openlit-best": _setup_openlit_best,
    "otel-v2": _setup_otel_v2,
}


_content_in_logs = False
_calls = 0  # every call made, warm-up included: spans per call is checked against it


def _plain(client: OpenAI) -> None:
    global _calls
    _calls += 1
    response = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=400
    )
    if not response.choices[0].message.content:
        raise RuntimeError("the fake answered without content")


def _stream(client: OpenAI) -> int:
    global _calls
    _calls += 1
    chunks = 0
    for _ in client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=400,
        stream=True,
        stream_options={"include_usage": True},
    ):
        chunks += 1
    return chunks


def _cpu_per_call_us(call: Callable[[], Any], calls: int, flush: Callable[[], Any]) -> float:
    start = time.process_time()  # every thread of the process: export threads count too
    for _ in range(calls):
        call()
    flush()  # the batch processor's export of these calls' spans counts in them
    return (time.process_time() - start) / calls * 1e6


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(
    client: OpenAI, calls: int, batch_size: int, flush: Callable[[], Any]
) -> dict[str, Any]:
    """Per-call CPU of `calls` plain and `calls` streamed calls, in alternating batches."""
    for _ in range(20):  # warm up caches, pools, lazy imports
        _plain(client)
        _stream(client)
    flush()
    plain: list[float] = []
    stream: list[float] = []
    for _ in range(max(1, calls // batch_size)):  # alternate: load drift hits both alike
        plain.append(_cpu_per_call_us(lambda: _plain(client), batch_size, flush))
        stream.append(_cpu_per_call_us(lambda: _stream(client), batch_size, flush))
    return {"plain_us": plain, "stream_us": stream, "chunks": _stream(client)}


def memory(client: OpenAI, calls: int, samples: int) -> dict[str, Any]:
    every = max(1, calls // samples)
    rss: list[tuple[int, int]] = [(0, _rss_bytes())]
    for done in range(1, calls + 1):
        # One streamed call in ten: the stream proxies must not leak either.
        if done % 10:
            _plain(client)
        else:
            _stream(client)
        if done % every == 0:
            rss.append((done, _rss_bytes()))
    return {"rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=sorted(SETUPS))
    parser.add_argument("base_url")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--otlp", metavar="SINK_URL", help="batch processor + OTLP/HTTP export")
    args = parser.parse_args()

    exporter = DroppingExporter()
    provider = _provider(exporter, args.otlp)
    counter = CountingProcessor()
    if args.otlp is not None:
        provider.add_span_processor(counter)
    rss_before = _rss_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    for module in IMPORTS[args.config]:
        importlib.import_module(module)
    import_cpu_ms = (time.process_time() - cpu) * 1e3
    import_wall_ms = (time.perf_counter() - wall) * 1e3
    rss_after_import = _rss_bytes()
    started = time.process_time()
    SETUPS[args.config](provider)
    setup_cpu_ms = (time.process_time() - started) * 1e3
    rss_after_setup = _rss_bytes()
    client = OpenAI(base_url=args.base_url, api_key="bench-key", max_retries=0)
    flush = provider.force_flush if args.otlp is not None else lambda: None
    if args.memory:
        result = memory(client, args.calls, samples=20)
    else:
        result = measure(client, args.calls, args.batch_size, flush)
    provider.force_flush()
    if args.otlp is not None:
        content = "-"  # sent away: the drop setup's run says where content is
    else:
        content = "span" if exporter.content_seen else "log" if _content_in_logs else "none"
    result.update(
        spans=counter.spans if args.otlp is not None else exporter.spans,
        content=content,
        calls=_calls,
        import_cpu_ms=import_cpu_ms,
        import_wall_ms=import_wall_ms,
        setup_cpu_ms=setup_cpu_ms,
        rss_before=rss_before,
        rss_after_import=rss_after_import,
        rss_after_setup=rss_after_setup,
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
