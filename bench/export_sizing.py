"""Instructions the exporter `instrument()` sets up spends sizing a span, against encoding it.

    .venv/bin/python bench/export_sizing.py [--spans 512]

`SizeBoundedExporter` sizes every span of a batch before the OTLP exporter encodes it, to send
the batch in requests a collector accepts. Both run in the batch processor's thread. This makes
`--spans` chat calls with Assay on (the real openai client against the fake OpenAI server,
spans kept in memory), then counts with callgrind, per span: `request_parts` over the batch
(`sizing`) and the SDK's `encode_spans(...).SerializeToString()` (`encoding`). Needs valgrind
and gcc, as `bench/overhead_inprocess.py` does.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind import count_script
from overhead_worker import MESSAGES, MODEL

PHASES = ("sizing", "encoding")


def _count(lib: str, count: int) -> None:
    import openai
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from assay.collector.demo.fake_openai import FakeOpenAI
    from assay.instrumentation import instrument
    from assay.instrumentation._export import REQUEST_CHARS, request_parts

    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    instrument(tracer_provider=provider, capture_content=True)
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="bench", max_retries=0)
        for _ in range(count):
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=400
            )
    spans = list(kept.get_finished_spans())

    def sizing() -> None:
        list(request_parts(spans, REQUEST_CHARS))

    def encoding() -> None:
        encode_spans(spans).SerializeToString()

    callgrind = ctypes.CDLL(lib)
    for name, run in zip(PHASES, (sizing, encoding), strict=True):
        run()  # warm up
        callgrind.cg_start()
        run()
        callgrind.cg_dump(name.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=512, help="spans in the batch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _count(args.child, args.spans)
        return
    totals = count_script(__file__, ["--spans", str(args.spans)])
    print(f"k instructions per span, a batch of {args.spans} chat spans (callgrind)")
    for name in PHASES:
        print(f"  {name:<9} {totals[name] / args.spans / 1000:8.1f}")


if __name__ == "__main__":
    main()
