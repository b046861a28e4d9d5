"""An instrumented app's memory while its collector is down: RSS against calls made.

    .venv/bin/python bench/app_memory.py [--calls 1500,5000,10000,20000,40000]
        [--protocols grpc,http/protobuf] [--down unanswering,refused] [--trace]

A child process instruments itself (`instrument()`: the SDK's batch processor, Assay's
`SizeBoundedExporter`, the OTLP exporter) and makes chat calls to a fake OpenAI server on
loopback while its collector is down (`unanswering`: the port takes connections and never
answers; `refused`: nothing listens). At each mark it prints its RSS and what holds spans: the
SDK's queue (at most `OTEL_BSP_MAX_QUEUE_SIZE`, 2,048), the batches Assay keeps for the
collector (at most 2,048 spans), and the span objects alive in the process (a span beyond these
two and the export in flight would be a leak). `--trace` adds the Python heap that
tracemalloc sees (slower: one frame per allocation).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.demo.fake_openai import FakeOpenAI
from bench.app_exit import down_collectors

CHILD = """
import gc, os, time, tracemalloc
if os.environ.get("TRACE"):
    tracemalloc.start(1)
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, _Span
SPAN_TYPES = {ReadableSpan, _Span}
from assay.instrumentation import instrument

instrument()
processor = trace.get_tracer_provider()._active_span_processor._span_processors[0]
kept = processor.span_exporter
client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="k", max_retries=0)

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

made, started = 0, time.perf_counter()
for mark in (int(m) for m in os.environ["MARKS"].split(",")):
    while made < mark:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"call {made}"}]
        )
        made += 1
    gc.collect()
    alive = sum(type(o) in SPAN_TYPES for o in gc.get_objects())  # type(): no proxy woken
    queued = len(getattr(getattr(processor, "_batch_processor", None), "_queue", ()))
    line = (
        f"calls {made:6d}  RSS {rss_mib():6.1f} MiB  queued {queued:5d}  kept {len(kept._kept):5d}"
        f"  spans alive {alive:5d}  {time.perf_counter() - started:5.0f} s"
    )
    if tracemalloc.is_tracing():
        line += f"  Python heap {tracemalloc.get_traced_memory()[0] / 2**20:6.1f} MiB"
    print(line, flush=True)
os._exit(0)  # no exit flush: only the memory is measured
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1500,5000,10000,20000,40000")
    parser.add_argument("--protocols", default="grpc,http/protobuf")
    parser.add_argument("--down", default="unanswering,refused")
    parser.add_argument("--trace", action="store_true")
    options = parser.parse_args()
    with down_collectors() as endpoints, FakeOpenAI() as fake:
        for protocol in options.protocols.split(","):
            for down in options.down.split(","):
                print(f"== {protocol}, collector {down}", flush=True)
                env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))}
                env.update(
                    BASE_URL=fake.base_url,
                    MARKS=options.calls,
                    OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                    OTEL_EXPORTER_OTLP_ENDPOINT=endpoints[down],
                    TRACE="1" if options.trace else "",
                )
                child = subprocess.run(
                    [sys.executable, "-c", textwrap.dedent(CHILD)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,  # the exporter's retry warnings
                    text=True,
                    timeout=3600,
                )
                print(child.stdout, end="", flush=True)


if __name__ == "__main__":
    main()
