"""Instructions Assay's openai wrapper costs per chat call, counted in process by callgrind.

    .venv/bin/python bench/overhead_inprocess.py [--calls 100] [--content off]

`bench/overhead.py` counts whole calls of the real client against a fake server: its streamed
cells move by tens of thousands of instructions from run to run, as the client's reads of the
server's stream do. This counts only Assay: one chat completion and one 100-chunk stream are
fetched once from the fake OpenAI server (the real `openai` response and chunk objects), then
Assay's wrapper of `chat.completions.create` runs on them `--calls` times per phase, with a
`wrapped` that returns them instead of calling the server (a fresh `openai.Stream` over the
chunks for each stream), spans going to an SDK `SimpleSpanProcessor` whose exporter drops them.
Phases: `plain`, `stream` (iterated to its end), and `floor` (an SDK span started with the
attributes Assay's plain span ends with, then ended: what recording them costs by itself).
Same request as `bench/overhead.py`'s workers. Needs valgrind and gcc, as that bench does.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind import count_script
from overhead import _reply_of
from overhead_worker import MESSAGES, MODEL

PHASES = ("plain", "stream", "floor")
WARM_UP = 20


def _count(lib: str, calls: int, capture: bool) -> None:
    import openai
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.trace import SpanKind

    from assay.collector.demo.fake_openai import FakeOpenAI
    from assay.instrumentation.providers.openai import OpenAIWrappers

    first: dict[str, Any] = {}

    class FirstSpanExporter(SpanExporter):
        """Keeps the first span's attributes, and drops every span."""

        def export(self, spans: Any) -> SpanExportResult:
            if not first:
                span: ReadableSpan = spans[0]
                first["attributes"] = dict(span.attributes or {})
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FirstSpanExporter()))
    reply = _reply_of(100)
    plain_kwargs: dict[str, Any] = dict(
        model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=400
    )
    stream_kwargs = dict(plain_kwargs, stream=True, stream_options={"include_usage": True})
    with FakeOpenAI(reply=lambda request: reply) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="bench", max_retries=0)
        response = client.chat.completions.create(**plain_kwargs)
        chunks = list(client.chat.completions.create(**stream_kwargs))

    def stream_of_chunks(*args: Any, **kwargs: Any) -> openai.Stream[Any]:
        stream = openai.Stream.__new__(openai.Stream)
        stream._iterator = iter(chunks)
        stream.response = None  # type: ignore[assignment]
        return stream

    wrappers = OpenAIWrappers(provider.get_tracer("assay"), capture)
    wrapper = wrappers.wrapper("chat", False)
    resource = client.chat.completions

    def plain() -> None:
        wrapper(lambda *args, **kwargs: response, resource, (), plain_kwargs)

    def stream() -> None:
        for _ in wrapper(stream_of_chunks, resource, (), stream_kwargs):
            pass

    plain()
    attributes = first["attributes"]
    tracer = provider.get_tracer("floor")

    def floor() -> None:
        tracer.start_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=attributes).end()

    callgrind = ctypes.CDLL(lib)
    for name, run in zip(PHASES, (plain, stream, floor), strict=True):
        for _ in range(WARM_UP):
            run()
        callgrind.cg_start()
        for _ in range(calls):
            run()
        callgrind.cg_dump(name.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls counted per phase")
    parser.add_argument("--content", choices=("on", "off"), default="on", help="content capture")
    parser.add_argument("--child", metavar="LIB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _count(args.child, args.calls, args.content == "on")
        return
    counts = count_script(__file__, ["--calls", str(args.calls), "--content", args.content])
    print(
        f"k instructions per call, Assay's wrapper in process (content {args.content}, "
        f"{args.calls} calls a phase, callgrind)"
    )
    for phase in PHASES:
        print(f"  {phase:<8} {counts[phase] / args.calls / 1e3:>10,.1f}")


if __name__ == "__main__":
    main()
