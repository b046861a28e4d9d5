"""One configuration of the overhead benchmark: openai calls in this process, with and
without the instrumentation, CPU time or instructions per call.

Run by `bench/overhead.py` with the Python of the configuration's own virtual environment
(the peers' pins conflict), so it imports only the standard library, `openai` and the
OpenTelemetry SDK at the top; each configuration imports its instrumentation itself.

    python overhead_worker.py CONFIG BASE_URL --calls N [--batch-size B] [--memory]
                              [--otlp SINK_URL] [--content on|off] [--callgrind LIB]

Prints one JSON object on stdout: per batch, the CPU per call (µs, every thread and the
calling thread) of plain and streamed calls with the instrumentation and of the paired
batches without it (`Switch`); with `--callgrind` (run under valgrind) instructions per call
with and without it instead; with `--memory` the RSS samples of a long run. And what the
start-up cost: the CPU and wall time of importing the instrumentation, of setting it up, and
the RSS before, after the imports and after the set-up.

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

from openai import OpenAI
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


def _set_content_capture(on: bool) -> None:
    """Every instrumentation's switch for prompt and response content, all on or all off; set
    before any instrumentation is imported. Defaults differ: Assay, OpenLLMetry and OpenLIT
    capture content unless told not to, the official openai-v2 only when told to."""
    os.environ.update(
        {
            "ASSAY_CAPTURE_CONTENT": "true" if on else "false",
            "TRACELOOP_TRACE_CONTENT": "true" if on else "false",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"
            if on
            else "NO_CONTENT",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
        }
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

        # Under valgrind time runs ~50 times slower: a 5 s schedule would export every few
        # calls. Each counted phase ends with force_flush() instead, as in the CPU runs.
        delay = 600_000 if os.environ.get("OVERHEAD_CALLGRIND_OUT") else None
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{otlp}/v1/traces"), schedule_delay_millis=delay
            )
        )
    # Global, so an instrumentation that looks it up (or reuses it, like OpenLIT) finds it.
    trace.set_tracer_provider(provider)
    return provider


def _setup_none(provider: TracerProvider) -> None:
    pass


def _setup_assay(provider: TracerProvider) -> None:
    from assay.instrumentation import instrument

    instrument(tracer_provider=provider, capture_content=_CAPTURE_CONTENT)


def _wrap_create(provider: TracerProvider, attributes: dict[str, Any] | None) -> None:
    # The least any SDK-based instrumentation pays: one current span per call, with a given
    # set of attributes (none, or a constant copy of what an LLM span carries).
    import wrapt
    from openai.resources.chat.completions import Completions

    tracer = provider.get_tracer("overhead-bench.floor")

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with tracer.start_as_current_span("chat", attributes=attributes):
            return wrapped(*args, **kwargs)  # a stream's span ends before its chunks

    wrapt.wrap_function_wrapper(Completions, "create", traced)


def _setup_span_floor(provider: TracerProvider) -> None:
    _wrap_create(provider, None)


def _llm_span_attributes() -> dict[str, Any]:
    """The attributes of an LLM chat span of this bench's call, as constants: the GenAI
    request, response and usage attributes, with the request and reply messages (about 500
    characters each) when content capture is on."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.stream": False,
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 400,
        "gen_ai.response.id": "chatcmpl-4aa1bf033b94c6b5fa7fa784c3761",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 70,
        "gen_ai.usage.output_tokens": 130,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.usage.cost": 8.85e-05,
        "bench.usage.source": "reported",
        "bench.usage.reported": True,
    }
    if _CAPTURE_CONTENT:
        attributes["gen_ai.input.messages"] = json.dumps(
            [
                {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                for m in MESSAGES
            ]
        )
        attributes["gen_ai.output.messages"] = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "x" * 480}]}]
        )
    return attributes


def _setup_span_floor_attributes(provider: TracerProvider) -> None:
    _wrap_create(provider, _llm_span_attributes())


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
        capture_message_content=_CAPTURE_CONTENT,
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
    "span-floor-attributes": ("wrapt",),
    "openllmetry": ("opentelemetry.instrumentation.openai",),
    "openlit-default": ("openlit",),
    "openlit-best": ("openlit",),
    "otel-v2": ("opentelemetry.instrumentation.openai_v2",),
}

SETUPS: dict[str, Callable[[TracerProvider], None]] = {
    "none": _setup_none,
    "assay": _setup_assay,
    "span-floor": _setup_span_floor,
    "span-floor-attributes": _setup_span_floor_attributes,
    "openllmetry": _setup_openllmetry,
    "openlit-default": _setup_openlit_default,
    "openlit-best": _setup_openlit_best,
    "otel-v2": _setup_otel_v2,
}


_content_in_logs = False
_CAPTURE_CONTENT = True  # `--content off` turns it off in every configuration
_calls = 0  # every instrumented call made, warm-up included: spans per call is checked on it
_traced = True  # the instrumentation is switched on (`Switch`)


def _plain(client: OpenAI) -> None:
    global _calls
    _calls += _traced
    response = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=400
    )
    if not response.choices[0].message.content:
        raise RuntimeError("the fake answered without content")


def _stream(client: OpenAI) -> int:
    global _calls
    _calls += _traced
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


def _touch(client: OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    for _ in client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    ):
        pass


def _cpu_per_call_us(
    call: Callable[[], Any], calls: int, flush: Callable[[], Any]
) -> tuple[float, float]:
    """CPU µs per call of every thread of the process (export threads too), and of the
    calling thread alone: what the application's own thread pays."""
    start, start_thread = time.process_time(), time.thread_time()
    for _ in range(calls):
        call()
    thread = time.thread_time() - start_thread
    flush()  # the batch processor's export of these calls' spans counts in them
    return (time.process_time() - start) / calls * 1e6, thread / calls * 1e6


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# The packages the bench's call goes through: an instrumentation patches functions in these.
_CALL_PATH = ("openai", "httpx", "httpx2", "httpcore", "httpcore2")


def _functions_on_call_path() -> dict[tuple[Any, str], Any]:
    """Every module-level and class-level callable of the modules the call goes through."""
    found: dict[tuple[Any, str], Any] = {}
    classes: dict[int, type] = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _CALL_PATH:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value):
                found[(module, attr)] = value
            # (a class's own module may be missing from sys.modules: openai's lazy modules)
            if isinstance(value, type) and value.__module__.split(".")[0] in _CALL_PATH:
                classes[id(value)] = value
    for cls in classes.values():
        for class_attr, member in list(vars(cls).items()):
            if callable(member) or isinstance(member, (staticmethod, classmethod)):
                found[(cls, class_attr)] = member
    return found


class Switch:
    """Turns the instrumentation off and on again in this process: puts back the functions
    its set-up replaced on the call path (openai's methods, the HTTP client's), or its own."""

    def __init__(self, before: dict[tuple[Any, str], Any]) -> None:
        after = _functions_on_call_path()
        self.patched = [
            (owner, attr, original, after[(owner, attr)])
            for (owner, attr), original in before.items()
            if (owner, attr) in after and after[(owner, attr)] is not original
        ]
        self.on = True

    def set(self, on: bool) -> None:
        for owner, attr, original, patched in self.patched:
            setattr(owner, attr, patched if on else original)
        self.on = on
        global _traced
        _traced = on


def measure(
    client: OpenAI, calls: int, batch_size: int, flush: Callable[[], Any], switch: Switch
) -> dict[str, Any]:
    """Per-call CPU of `calls` plain and `calls` streamed calls with the instrumentation, each
    batch paired with a batch of as many calls without it in the same process right before or
    after it (the order alternates): the pair sees the same load of the machine, so their
    difference is the instrumentation's cost. Plain and streamed pairs alternate too."""
    for _ in range(20):  # warm up caches, pools, lazy imports
        _plain(client)
        _stream(client)
    flush()
    calls_of = {"plain": lambda: _plain(client), "stream": lambda: _stream(client)}
    timed: dict[str, dict[bool, list[tuple[float, float]]]] = {
        kind: {True: [], False: []} for kind in calls_of
    }
    for pair in range(max(1, calls // batch_size)):
        for kind, call in calls_of.items():
            for on in (True, False) if pair % 2 else (False, True):
                switch.set(on)
                timed[kind][on].append(_cpu_per_call_us(call, batch_size, flush))
    switch.set(True)
    result: dict[str, Any] = {"chunks": _stream(client)}
    for kind, by_switch in timed.items():
        for on, suffix in ((True, ""), (False, "_bare")):
            result[f"{kind}{suffix}_us"] = [every_thread for every_thread, _ in by_switch[on]]
            result[f"{kind}{suffix}_thread_us"] = [calling for _, calling in by_switch[on]]
    return result


def count_instructions(
    client: OpenAI, calls: int, streams: int, flush: Callable[[], Any], switch: Switch, lib: str
) -> dict[str, Any]:
    """Instructions per call, counted by callgrind (this process runs under valgrind with
    collection off; `lib` is the bench's small library of callgrind client requests):
    `calls` plain and `streams` streamed calls with the instrumentation switched off, then on,
    each phase ending with `flush()` and counted alone, every thread included. Unlike CPU
    time, the count does not depend on what else the machine runs."""
    import ctypes
    import glob

    from callgrind import dump_totals  # bench/, beside this script

    callgrind = ctypes.CDLL(lib)
    if not callgrind.cg_running():
        raise SystemExit("--callgrind needs the worker to run under valgrind --tool=callgrind")
    for on in (True, False):  # warm up both ways: caches, pools, lazy imports
        switch.set(on)
        for _ in range(2):
            _plain(client)
            _stream(client)
    flush()
    phases = {
        "plain": (lambda: _plain(client), calls),
        "stream": (lambda: _stream(client), streams),
    }
    for kind, (call, count) in phases.items():
        for on in (False, True):
            switch.set(on)
            callgrind.cg_start()
            for _ in range(count):
                call()
            flush()
            callgrind.cg_dump(f"{kind}-{'on' if on else 'off'}".encode())
    switch.set(True)
    totals = dump_totals(glob.glob(f"{os.environ['OVERHEAD_CALLGRIND_OUT']}.{os.getpid()}.*"))
    result: dict[str, Any] = {"chunks": _stream(client)}
    for kind, (_, count) in phases.items():
        result[f"{kind}_instructions"] = totals[f"{kind}-on"] / count
        result[f"{kind}_bare_instructions"] = totals[f"{kind}-off"] / count
    return result


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
    parser.add_argument("--content", choices=("on", "off"), default="on")
    parser.add_argument("--callgrind", metavar="LIB", help="count instructions (under valgrind)")
    args = parser.parse_args()
    global _CAPTURE_CONTENT
    _CAPTURE_CONTENT = args.content == "on"
    _set_content_capture(_CAPTURE_CONTENT)

    exporter = DroppingExporter()
    provider = _provider(exporter, args.otlp)
    counter = CountingProcessor()
    if args.otlp is not None:
        provider.add_span_processor(counter)
    # One plain and one streamed call before anything is instrumented: openai loads its
    # modules lazily, and the switch must know every function of the call path unpatched.
    _touch(OpenAI(base_url=args.base_url, api_key="bench-key", max_retries=0))
    rss_before = _rss_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    for module in IMPORTS[args.config]:
        importlib.import_module(module)
    import_cpu_ms = (time.process_time() - cpu) * 1e3
    import_wall_ms = (time.perf_counter() - wall) * 1e3
    rss_after_import = _rss_bytes()
    bare = _functions_on_call_path()
    started = time.process_time()
    SETUPS[args.config](provider)
    setup_cpu_ms = (time.process_time() - started) * 1e3
    switch = Switch(bare)
    rss_after_setup = _rss_bytes()
    client = OpenAI(base_url=args.base_url, api_key="bench-key", max_retries=0)
    flush = provider.force_flush if args.otlp is not None else lambda: None
    if args.memory:
        result = memory(client, args.calls, samples=20)
    elif args.callgrind:
        streams = max(1, args.calls // 5)
        result = count_instructions(client, args.calls, streams, flush, switch, args.callgrind)
    else:
        result = measure(client, args.calls, args.batch_size, flush, switch)
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
