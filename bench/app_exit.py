"""How an instrumented app fares when its collector is down: call time, memory, time to exit.

    .venv/bin/python bench/app_exit.py [--calls 30,1500] [--rounds 2] [--python OTHER/python]

A child process instruments itself (`instrument()`, the default batch processor and OTLP
exporter), makes `--calls` chat calls to a fake OpenAI server on loopback, prints the median
and slowest call and its peak RSS, and ends without flushing. Its collector is down in one of
two ways: `refused` (nothing listens on the port: connections are refused at once) or
`unanswering` (the port takes connections and never answers: a hung collector, a black hole).
What is timed is the exit: from the child's last line to its end, where the exit flush waits
for the exporter. Each `--python` (an interpreter of another checkout, e.g. main's
`.venv/bin/python`) runs in turn within each round, so that before and after share the load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.demo.fake_openai import FakeOpenAI

CHILD = """
import os, resource, sys, time
from assay.instrumentation import instrument
import openai

instrument()
client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="k", max_retries=0)
took = []
for n in range(int(os.environ["CALLS"])):
    start = time.perf_counter()
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"call {n}"}]
    )
    took.append(time.perf_counter() - start)
took.sort()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
median, slowest = took[len(took) // 2] * 1000, took[-1] * 1000
print(f"{median:.1f} {slowest:.1f} {rss:.0f} {time.time()}", flush=True)
"""


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@contextlib.contextmanager
def down_collectors() -> Iterator[dict[str, str]]:
    """Endpoints of a collector that is down, by how: a port that refuses connections, and one
    that takes them into the kernel's queue and never answers."""
    with socket.socket() as unanswering:
        unanswering.bind(("127.0.0.1", 0))
        unanswering.listen(64)  # connections wait in the kernel's queue, never accepted
        yield {
            "refused": f"http://127.0.0.1:{_refused_port()}",
            "unanswering": f"http://127.0.0.1:{unanswering.getsockname()[1]}",
        }


def run(python: str, protocol: str, endpoint: str, calls: int, base_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))}
    env.update(
        BASE_URL=base_url,
        CALLS=str(calls),
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
    )
    child = subprocess.run(
        [python, "-c", textwrap.dedent(CHILD)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    ended = time.time()
    median, slowest, rss, last_line = child.stdout.split()
    exit_s = ended - float(last_line)
    return f"call median {median} ms, slowest {slowest} ms, RSS {rss} MiB, exit {exit_s:5.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="30,1500")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("--protocols", default="grpc,http/protobuf")
    options = parser.parse_args()
    pythons = [sys.executable, *options.python]
    with down_collectors() as down, FakeOpenAI() as fake:
        for round_number in range(options.rounds):
            for calls in (int(c) for c in options.calls.split(",")):
                for protocol in options.protocols.split(","):
                    for kind, endpoint in down.items():
                        for python in pythons:
                            figures = run(python, protocol, endpoint, calls, fake.base_url)
                            print(
                                f"round {round_number + 1} {calls:5d} calls {protocol:13s} "
                                f"{kind:11s} {python}: {figures}",
                                flush=True,
                            )


if __name__ == "__main__":
    main()
