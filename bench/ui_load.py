"""UI-load benchmark: do slow UI and API reads hold up OTLP acknowledgements?

A collector on an embedded store holding `--calls` synthetic calls (`ui_paging.py`'s). Phases
of `--seconds` alternate `--rounds` times: ingest alone, and ingest while `--readers` clients
keep asking for the calls list searching a text no call holds (it reads every prompt and
response: seconds a page). Throughout, 2 senders export LLM spans over OTLP/gRPC as fast as they
are acknowledged, and a prober exports one small request every 0.1 s and times its answer.
Printed per phase: spans acknowledged/s, the probe's latency p50/p99/max (an export unanswered
for 10 s counts as 10 s), and the readers' pages: how many were answered by status (200 a page,
400 a read past its limit, 503 refused while the reads' slots are full) and their latency
p50/max, answered pages alone and all of them.

Run: `.venv/bin/python bench/ui_load.py [--calls 1000000] [--seconds 20] [--rounds 2]`; run it
with another checkout's Python to measure that checkout's collector.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.store.embedded import EmbeddedStore
from bench.ingest import EXPORT, build_requests, export_until
from bench.ui_paging import fill
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import start_collector

PROBE_TIMEOUT_S = 10.0
SPANS_PER_REQUEST = 200


def phase(http: str, grpc_port: int, seconds: float, readers: int, bodies: list[bytes]) -> str:
    stop = threading.Event()
    lock = threading.Lock()
    acked = [0]
    statuses: Counter[int] = Counter()
    page_ms: dict[bool, list[float]] = {True: [], False: []}  # by "answered with a page"
    latencies: list[float] = []
    probe_body = make_request("ui-load-probe", make_span()).SerializeToString()

    def one_acked() -> None:
        with lock:
            acked[0] += SPANS_PER_REQUEST

    def send() -> None:
        export_until(grpc_port, bodies, stop, one_acked)

    def probe() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            export = channel.unary_unary(
                EXPORT, request_serializer=None, response_deserializer=None
            )
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    export(probe_body, timeout=PROBE_TIMEOUT_S)
                    elapsed = time.perf_counter() - started
                except grpc.RpcError:
                    elapsed = PROBE_TIMEOUT_S
                latencies.append(elapsed * 1000)
                time.sleep(max(0.0, 0.1 - elapsed))

    def read() -> None:
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.get(f"{http}/calls", params={"text": "no call holds this"})
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    statuses[response.status_code] += 1
                    page_ms[response.status_code == 200].append(elapsed)
                if response.status_code == 503:  # refused at once: wait as it says
                    stop.wait(float(response.headers.get("retry-after", "1")))

    workers = [threading.Thread(target=send) for _ in range(2)] + [threading.Thread(target=probe)]
    readers_ = [threading.Thread(target=read, daemon=True) for _ in range(readers)]
    started = time.perf_counter()
    for thread in workers + readers_:
        thread.start()
    stop.wait(seconds)
    stop.set()
    elapsed = time.perf_counter() - started
    for thread in workers:
        thread.join()
    for thread in readers_:
        thread.join(300)
    ordered = sorted(latencies)
    every_page = sorted(page_ms[True] + page_ms[False])
    answered = sorted(page_ms[True])

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    pages = " ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    return (
        f"{acked[0] / elapsed:8.0f} spans/s acked; probe export p50 {pct(ordered, 0.5):7.1f} ms, "
        f"p99 {pct(ordered, 0.99):7.1f} ms, max {ordered[-1]:7.1f} ms; UI pages {{{pages}}}, "
        f"pages p50/max {pct(answered, 0.5):.0f}/{max(answered, default=float('nan')):.0f} ms, "
        f"all answers p50/max {pct(every_page, 0.5):.0f}/"
        f"{max(every_page, default=float('nan')):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--readers", type=int, default=8)
    args = parser.parse_args()
    bodies = build_requests(20 * SPANS_PER_REQUEST, SPANS_PER_REQUEST)
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder, "data")
        store = EmbeddedStore(storage, "assay")
        store.migrate()
        fill(store, args.calls)
        store.query("OPTIMIZE TABLE assay.llm_calls FINAL")
        store.close()
        collector = start_collector(storage, Path(folder, "log"))
        try:
            for round_ in range(args.rounds):
                for name, readers in (
                    ("ingest alone", 0),
                    (f"+ {args.readers} UI readers", args.readers),
                ):
                    result = phase(
                        collector.http_url, collector.grpc_port, args.seconds, readers, bodies
                    )
                    print(f"round {round_ + 1} {name:<18} {result}", flush=True)
        finally:
            collector.stop()


if __name__ == "__main__":
    main()
