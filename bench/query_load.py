"""Query-load benchmark: what 8 heavy `/api/query` requests cost ingestion and health checks.

One collector on embedded storage. Two phases of `--seconds` each, alternated `--rounds` times
(the machine's load drifts) and printed side by side: ingest alone, and ingest while 8 clients
keep heavy queries running (a CPU-bound scan and a GROUP BY with millions of keys, alternating;
each client sends its next query when the last one is answered, and waits out a 429).
Throughout, 2 senders export realistic LLM spans over OTLP/gRPC as fast as the collector
acknowledges them, and a prober calls `/api/health` every 0.1 s. Printed per phase: spans
acknowledged/s and LLM calls stored/s (the collector's own counters), `/api/health` latency
p50/p99/max (a probe unanswered for 10 s counts as 10 s), queries answered, refused (429),
stopped at their time limit and failed, and the collector's peak RSS. A phase ends when its
last query has (queries run on to their time limit), so none runs into the next phase.

Run: `.venv/bin/python bench/query_load.py [--seconds 20] [--heavy 8] [--rounds 2]`; run it
with another checkout's Python (`/work/main/.venv/bin/python bench/query_load.py`) to measure
that checkout's collector.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import build_requests, export_until
from tests.conftest import RunningCollector, start_collector

HEAVY_QUERIES = (
    # CPU: a scan that never matches, stopped only by the time limit.
    "SELECT count() AS n FROM numbers(100000000000) WHERE sipHash64(number) % 1000 = 1001",
    # Memory: a hash table of 2 million keys per thread, over a long scan.
    "SELECT number % 2000000 AS k, count() AS c FROM numbers(20000000000) "
    "GROUP BY k ORDER BY c DESC LIMIT 1",
)
PROBE_TIMEOUT_S = 10.0
SPANS_PER_REQUEST = 200


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    spans_acked: int = 0
    calls_written: int = 0
    health_ms: list[float] = field(default_factory=list)
    queries: dict[str, int] = field(
        default_factory=lambda: {"ok": 0, "refused": 0, "timed_out": 0, "failed": 0}
    )
    peak_rss: int = 0

    def add(self, other: Phase) -> None:
        """Another round of the same phase."""
        self.seconds += other.seconds
        self.spans_acked += other.spans_acked
        self.calls_written += other.calls_written
        self.health_ms += other.health_ms
        for outcome, count in other.queries.items():
            self.queries[outcome] += count
        self.peak_rss = max(self.peak_rss, other.peak_rss)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.health_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _written(collector: RunningCollector) -> int:
    body = httpx.get(f"{collector.http_url}/api/health", timeout=60).json()
    return int(body["pipeline"]["llm_calls_written"])


def run_phase(
    collector: RunningCollector, name: str, seconds: float, heavy: int, bodies: list[bytes]
) -> Phase:
    phase = Phase(name)
    stop = threading.Event()
    lock = threading.Lock()
    process = psutil.Process(collector.process.pid)

    def one_acked() -> None:
        with lock:
            phase.spans_acked += SPANS_PER_REQUEST

    def send() -> None:
        export_until(collector.grpc_port, bodies, stop, one_acked)

    def probe() -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    client.get(f"{collector.http_url}/api/health")
                    elapsed = time.perf_counter() - started
                except httpx.TimeoutException:
                    elapsed = PROBE_TIMEOUT_S
                phase.health_ms.append(elapsed * 1000)
                phase.peak_rss = max(phase.peak_rss, process.memory_info().rss)
                time.sleep(max(0.0, 0.1 - elapsed))

    def query(index: int) -> None:
        sql = HEAVY_QUERIES[index % len(HEAVY_QUERIES)]
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                try:
                    response = client.post(f"{collector.http_url}/api/query", json={"sql": sql})
                except httpx.HTTPError:
                    outcome = "failed"
                else:
                    outcome = {200: "ok", 429: "refused"}.get(response.status_code, "failed")
                    if response.status_code == 400 and "Timeout exceeded" in response.text:
                        outcome = "timed_out"  # stopped at query_timeout_s, as meant
                    if response.status_code == 429:
                        stop.wait(float(response.headers.get("retry-after", "1")))
                with lock:
                    phase.queries[outcome] += 1

    written_before = _written(collector)
    threads = [threading.Thread(target=send) for _ in range(2)]
    threads.append(threading.Thread(target=probe))
    # Query clients are daemons: on an unprotected collector their last request may be
    # answered long after the phase; they are not waited for.
    queries = [threading.Thread(target=query, args=(i,), daemon=True) for i in range(heavy)]
    started = time.perf_counter()
    for thread in threads + queries:
        thread.start()
    stop.wait(seconds)
    stop.set()
    phase.seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    phase.calls_written = _written(collector) - written_before
    _wait_for_free_slots(collector)
    return phase


def _wait_for_free_slots(collector: RunningCollector) -> None:
    """Until the queries of a phase have ended (they run to their time limit after it), so that
    none runs into the next phase."""
    with httpx.Client(timeout=120) as client:
        while (
            client.post(f"{collector.http_url}/api/query", json={"sql": "SELECT 1"}).status_code
            == 429
        ):
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--heavy", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=2, help="phases alternate this often (the load drifts)"
    )
    args = parser.parse_args()
    bodies = build_requests(20 * SPANS_PER_REQUEST, SPANS_PER_REQUEST)
    with tempfile.TemporaryDirectory() as tmp:
        # A spool big enough that back-pressure never limits the senders: the writer is slower
        # than the receivers, and the phases measure both.
        collector = start_collector(
            Path(tmp) / "data", Path(tmp) / "collector.log", ASSAY_MAX_SPOOL_BYTES=str(8 * 2**30)
        )
        try:
            run_phase(collector, "warm-up", 3, 0, bodies)
            alone, loaded = Phase("ingest alone"), Phase(f"with {args.heavy} heavy queries")
            for _ in range(args.rounds):
                alone.add(run_phase(collector, alone.name, args.seconds, 0, bodies))
                loaded.add(run_phase(collector, loaded.name, args.seconds, args.heavy, bodies))
            phases = [alone, loaded]
        finally:
            collector.process.kill()
            collector.process.wait()
    rows = [
        ("spans acknowledged/s", lambda p: f"{p.spans_acked / p.seconds:,.0f}"),
        ("LLM calls stored/s", lambda p: f"{p.calls_written / p.seconds:,.0f}"),
        ("/api/health p50 ms", lambda p: f"{p.percentile(0.5):,.1f}"),
        ("/api/health p99 ms", lambda p: f"{p.percentile(0.99):,.1f}"),
        ("/api/health max ms", lambda p: f"{max(p.health_ms, default=float('nan')):,.1f}"),
        ("health probes", lambda p: f"{len(p.health_ms)}"),
        (
            "queries ok / 429 / timed out / failed",
            lambda p: "{ok} / {refused} / {timed_out} / {failed}".format(**p.queries),
        ),
        ("collector peak RSS MiB", lambda p: f"{p.peak_rss / 2**20:,.0f}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{p.name:>26}" for p in phases))
    for label, cell in rows:
        print(f"{label:{width}}  " + "  ".join(f"{cell(p):>26}" for p in phases))


if __name__ == "__main__":
    main()
