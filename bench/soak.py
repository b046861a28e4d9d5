"""Soak: one collector folder for a long time, the collector restarted again and again under steady
traffic; prints what each life sent, acknowledged, stored and duplicated, the collector's memory
and the spool's disk at each restart.

A sender exports LLM spans over OTLP/gRPC at a steady rate and, like an OpenTelemetry SDK, sends
a request again until it is acknowledged (the collector is down while it restarts); what it
could not send meanwhile goes out when the collector is back, as an SDK's batch processor would.
`--restart-every` seconds after each start-up the collector is stopped, by SIGTERM and Ctrl-C
(SIGINT) in turn and once (`--kill-at`) by SIGKILL, and started again on the same folder with
the product's own settings. Spans carry the service `soak-N`, N the life in which their request
was first sent. Before each stop the script reads the collector's RSS (and the highest seen in
that life, sampled every few seconds), the disk the spool folder uses and what /api/health
counted. At the end it stops the traffic, waits for the spool to drain, and compares what was
acknowledged with what the store holds.

Run: `.venv/bin/python bench/soak.py [--duration 1200] [--restart-every 120] [--rate 50]`
(`--duration 60 --restart-every 15` is a short run). Not a test: nothing is asserted, but the
last lines say whether anything acknowledged is missing or stored twice, and whether memory and
the spool stayed flat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.settings import CollectorSettings
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector
from tests.reliability.traffic import EXPORT

SAMPLE_EVERY_S = 5.0


@dataclass
class Request:
    life: int  # the life in which it was first sent
    body: bytes
    span_ids: list[str]
    acked_by: int = 0  # the life whose collector acknowledged it


@dataclass
class Sender:
    """Sends requests of `batch` spans at `rate` spans/s until `stop` is set; sends each again
    until it is acknowledged, to whichever collector is running at the time."""

    rate: float
    batch: int
    target: tuple[str, int] = ("", 0)  # the running collector's gRPC endpoint, and its life
    requests: list[Request] = field(default_factory=list)
    failed_attempts: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, rng: random.Random) -> Request:
        spans = [
            make_span(
                "chat gpt-4o-mini",
                {
                    sc.OPERATION_NAME: sc.OP_CHAT,
                    sc.PROVIDER_NAME: "openai",
                    sc.REQUEST_MODEL: "gpt-4o-mini",
                    sc.USAGE_INPUT_TOKENS: rng.randint(100, 900),
                    sc.USAGE_OUTPUT_TOKENS: rng.randint(20, 300),
                    sc.INPUT_MESSAGES: json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "q" * 600}]}]
                    ),
                },
            )
            for _ in range(self.batch)
        ]
        life = self.target[1]
        body = make_request(f"soak-{life}", *spans).SerializeToString()
        return Request(life, body, [span.span_id.hex() for span in spans])

    def run(self) -> None:
        rng = random.Random(11)
        interval = self.batch / self.rate
        next_at = time.monotonic()
        channel: grpc.Channel | None = None
        channel_endpoint = ""
        while not self.stop.is_set():
            request = self.build(rng)
            with self.lock:
                self.requests.append(request)
            while True:
                endpoint, life = self.target
                if channel is None or channel_endpoint != endpoint:
                    if channel is not None:
                        channel.close()
                    channel_endpoint, channel = endpoint, grpc.insecure_channel(endpoint)
                try:
                    channel.unary_unary(EXPORT)(request.body, timeout=10)
                    request.acked_by, request.body = life, b""
                    break
                except grpc.RpcError:
                    # Down (restarting) or pushing back: as an SDK, try again.
                    self.failed_attempts += 1
                    time.sleep(0.2)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        if channel is not None:
            channel.close()


@dataclass
class Life:
    number: int
    ending: str
    collector: RunningCollector
    peak_rss: float = 0.0
    rss: float = 0.0  # MiB, just before the stop
    spool_disk: int = 0  # bytes of the spool folder, just before the stop
    written: int = 0  # llm_calls rows this life's collector counted as written
    deduplicated: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None

    def sample(self) -> float:
        rss = float(psutil.Process(self.collector.process.pid).memory_info().rss) / 2**20
        self.peak_rss = max(self.peak_rss, rss)
        return rss


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def health(collector: RunningCollector) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{collector.http_url}/api/health", timeout=10).json()
    return body


def endings(lives: int, kill_at: int) -> list[str]:
    """SIGTERM and SIGINT in turn, SIGKILL once; the last life is stopped after the check."""
    out = []
    clean = iter(["SIGTERM", "SIGINT"] * lives)
    for number in range(1, lives + 1):
        out.append("SIGKILL" if number == kill_at else next(clean))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1200, help="seconds of traffic")
    parser.add_argument("--restart-every", type=float, default=120, help="seconds per life")
    parser.add_argument("--rate", type=float, default=50, help="spans per second")
    parser.add_argument("--batch", type=int, default=10, help="spans per OTLP request")
    parser.add_argument(
        "--kill-at", type=int, default=0, help="the life ended by SIGKILL (default: the middle)"
    )
    parser.add_argument("--folder", type=Path, default=None, help="default: a new temporary one")
    args = parser.parse_args()
    count = max(2, round(args.duration / args.restart_every))
    kill_at = args.kill_at or max(1, count // 2)
    ends = endings(count, kill_at)
    work = args.folder or Path(tempfile.mkdtemp(prefix="assay-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    storage = work / "data"
    spool = storage / "spool"
    # The product's own batching: start_collector flushes every 0.1 s for the tests' latency.
    defaults = CollectorSettings.model_fields
    env = {
        "ASSAY_FLUSH_INTERVAL": str(defaults["flush_interval"].default),
        "ASSAY_QUERY_MAX_ROWS": "10000000",
    }

    print(
        f"Soak: {count * args.restart_every:.0f} s of {args.rate:g} spans/s in requests of "
        f"{args.batch}, {count} lives of {args.restart_every:g} s ({', '.join(ends[:-1])}); "
        f"folder {work}",
        flush=True,
    )
    sender = Sender(args.rate, args.batch)
    lives: list[Life] = []
    thread = threading.Thread(target=sender.run, daemon=True)
    for number in range(1, count + 1):
        collector = start_collector(storage, work / f"life-{number}.log", **env)
        life = Life(number, ends[number - 1], collector)
        lives.append(life)
        sender.target = (f"127.0.0.1:{collector.grpc_port}", number)
        if number == 1:
            thread.start()
        end = time.monotonic() + args.restart_every  # a life is counted from its start-up
        while (left := end - time.monotonic()) > 0:
            life.sample()
            time.sleep(min(SAMPLE_EVERY_S, left))
        if number == count:
            break
        stop(life, spool)
        print(
            f"  life {number:>2} ended by {life.ending:<7} exit {life.exit_code:>4}: "
            f"RSS {life.rss:.0f} MiB, spool {life.spool_disk:,} bytes, "
            f"{life.written:,} calls written",
            flush=True,
        )

    last = lives[-1]
    sender.stop.set()  # no new requests; the one in flight is still sent until acknowledged
    thread.join(120)
    drained = drain(last)
    report = compare(sender, lives, last.collector)
    stop(last, spool, signal.SIGTERM)
    print_report(sender, lives, report, drained, work)
    sys.stdout.flush()
    os._exit(0)  # gRPC's threads must not hold the exit


def stop(life: Life, spool: Path, how: signal.Signals | None = None) -> None:
    life.rss = life.sample()
    life.spool_disk = folder_bytes(spool)
    counted = health(life.collector)["pipeline"]
    life.written = counted["llm_calls_written"]
    life.deduplicated = counted["deduplicated"]
    life.collector.process.send_signal(how or getattr(signal, life.ending))
    life.exit_code = life.collector.process.wait(120)


def drain(life: Life) -> float:
    """Seconds until the last collector's spool is empty."""
    started = time.monotonic()
    while time.monotonic() - started < 300 and health(life.collector)["spool"]["bytes"]:
        time.sleep(0.5)
    return time.monotonic() - started


def compare(
    sender: Sender, lives: list[Life], collector: RunningCollector
) -> dict[int, dict[str, Any]]:
    """Per life of first sending: sent, acknowledged, stored, missing and duplicated spans."""
    services = tuple(f"soak-{life.number}" for life in lives)
    stored: dict[str, set[str]] = {service: set() for service in services}
    for row in collector.query(
        "SELECT DISTINCT service_name AS service, span_id FROM llm_calls "
        f"WHERE service_name IN {services!r}"
    ):
        stored[row["service"]].add(row["span_id"])
    # otel_traces_trace_id_ts is a plain MergeTree with one row per trace and insert: each span
    # here has a trace of its own, so a row beyond the first is the span stored a second time
    # (a request whose acknowledgement a kill lost, sent again). llm_calls merges such copies.
    duplicated = {
        row["service"]: row["extra"]
        for row in collector.query(
            "SELECT t.ServiceName AS service, sum(x.n - 1) AS extra FROM "
            "(SELECT DISTINCT ServiceName, TraceId FROM otel_traces "
            f"WHERE ServiceName IN {services!r}) AS t "
            "JOIN (SELECT TraceId, count() AS n FROM otel_traces_trace_id_ts GROUP BY TraceId) "
            "AS x USING TraceId GROUP BY service"
        )
    }
    out: dict[int, dict[str, Any]] = {}
    for life in lives:
        requests = [r for r in sender.requests if r.life == life.number]
        acked = {s for r in requests if r.acked_by for s in r.span_ids}
        got = stored[f"soak-{life.number}"]
        out[life.number] = {
            "sent": sum(len(r.span_ids) for r in requests),
            "acked": len(acked),
            "acked_later": sum(len(r.span_ids) for r in requests if r.acked_by > r.life),
            "stored": len(got & acked),
            "missing": len(acked - got),
            "unasked": len(got - acked),
            "duplicated": duplicated.get(f"soak-{life.number}", 0),
        }
    return out


def print_report(
    sender: Sender,
    lives: list[Life],
    report: dict[int, dict[str, Any]],
    drained: float,
    work: Path,
) -> None:
    print()
    print(
        "| life | ended | exit | spans sent | acknowledged | of them by a later life | stored "
        "| missing | duplicated | store dropped as replays | RSS at stop MiB | peak RSS MiB "
        "| spool on disk at stop |"
    )
    print("|---" * 13 + "|")
    for life in lives:
        row = report[life.number]
        ended = "end (after the check)" if life is lives[-1] else life.ending
        print(
            f"| {life.number} | {ended} | {life.exit_code} | {row['sent']:,} | {row['acked']:,} "
            f"| {row['acked_later']:,} | {row['stored']:,} | {row['missing']:,} "
            f"| {row['duplicated']:,} | {life.deduplicated or '-'} | {life.rss:.0f} "
            f"| {life.peak_rss:.0f} | {life.spool_disk:,} |"
        )
    total = {key: sum(row[key] for row in report.values()) for key in next(iter(report.values()))}
    dropped: dict[str, int] = {}
    for life in lives:
        for table, n in life.deduplicated.items():
            dropped[table] = dropped.get(table, 0) + n
    print(
        f"| all | | | {total['sent']:,} | {total['acked']:,} | {total['acked_later']:,} "
        f"| {total['stored']:,} | {total['missing']:,} | {total['duplicated']:,} "
        f"| {dropped or '-'} | | | |"
    )
    rss = [life.rss for life in lives]
    peaks = [life.peak_rss for life in lives]
    spools = [life.spool_disk for life in lives]
    print()
    print(
        f"  requests sent {len(sender.requests):,}, attempts refused or unanswered "
        f"{sender.failed_attempts:,}; the last spool drained in {drained:.1f} s"
    )
    print(
        f"  RSS at stop: first {rss[0]:.0f}, last {rss[-1]:.0f}, highest {max(rss):.0f} MiB; "
        f"peak per life {min(peaks):.0f}–{max(peaks):.0f} MiB"
    )
    print(f"  spool on disk at stop: highest {max(spools):,} bytes")
    verdict = (
        "every acknowledged span is stored"
        if not total["missing"]
        else f"{total['missing']:,} ACKNOWLEDGED SPANS MISSING"
    )
    print(f"  {verdict}; {total['unasked']:,} stored spans were never acknowledged")
    print(f"  folder and logs: {work}")


if __name__ == "__main__":
    main()
