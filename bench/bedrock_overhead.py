"""Bedrock overhead: CPU per boto3 call with and without Assay, against a fake in another process.

Run: `.venv/bin/python bench/bedrock_overhead.py [--calls 1000] [--rounds 3]`. Content capture
is on and spans are dropped by the exporter, so the figure is the instrumentation's own cost.
Three kinds of call: `converse`, `converse_stream` (read to the end) and `apply_guardrail`,
an operation of the same client that Assay passes through untouched. Bare and instrumented
rounds alternate in one process so that machine noise falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVE = (
    "import sys, time; from tests.fakes.fake_bedrock import FakeBedrock; "
    "fake = FakeBedrock().start(); print(fake.endpoint_url, flush=True); sys.stdin.read()"
)
MESSAGES = [{"role": "user", "content": [{"text": "Why is the sky blue? Answer briefly."}]}]


def cpu_per_call(call: Callable[[], Any], calls: int) -> float:
    """Microseconds of this process's CPU per call."""
    start = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - start) / calls * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from assay.instrumentation.providers.bedrock import BedrockInstrumentor

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    server = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDFAKE",
            aws_secret_access_key="fake",
            config=Config(retries={"max_attempts": 1}),
        )
        kinds: dict[str, Callable[[], Any]] = {
            "converse": lambda: client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES),
            "converse_stream": lambda: list(
                client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stream"]
            ),
            "apply_guardrail (passed through)": lambda: client.apply_guardrail(
                guardrailIdentifier="g",
                guardrailVersion="1",
                source="INPUT",
                content=[{"text": {"text": "hello"}}],
            ),
        }
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(Drop()))
        instrumentor = BedrockInstrumentor()
        for call in kinds.values():  # warm up connections and botocore's caches
            for _ in range(20):
                call()

        results: dict[str, dict[str, list[float]]] = {k: {"bare": [], "assay": []} for k in kinds}
        for _ in range(args.rounds):
            for mode in ("bare", "assay"):
                if mode == "assay":
                    instrumentor.instrument(tracer_provider=provider, capture_content=True)
                for kind, call in kinds.items():
                    results[kind][mode].append(cpu_per_call(call, args.calls))
                if mode == "assay":
                    instrumentor.uninstrument()
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)

    print(f"{args.calls} calls x {args.rounds} rounds, {os.cpu_count()} cores; best round\n")
    print(f"{'call':34} {'bare µs':>10} {'assay µs':>10} {'overhead µs':>12}")
    for kind, modes in results.items():
        bare, assay = min(modes["bare"]), min(modes["assay"])
        print(f"{kind:34} {bare:10.0f} {assay:10.0f} {assay - bare:12.0f}")


if __name__ == "__main__":
    main()
