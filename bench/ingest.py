"""Ingest benchmark: OTLP/gRPC export of realistic LLM spans into a collector on embedded storage.

Prints end-to-end spans/s (counted in the store, not at the receiver), the collector's peak
RSS and its CPU split by thread (the receivers' event loop, gRPC's threads, the segment reader,
the writer, the engine's merges and query pools, ...; with the stages each of the collector's
threads ran), then what each stage of the path costs per span (bench/ingest_stages.py: the
collector's code in this process, CPU time, with redaction and online evaluation on).
Run: `.venv/bin/python bench/ingest.py [--spans 50000] [--batch 200] [--senders 2]
[--stage-spans 10000] [--only e2e|stages]`; `make bench-quick` runs a smaller one (~1 minute).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest_stages import print_stages, run_stages

from assay.collector.redaction import BUILTIN_PATTERNS
from assay.collector.spool import SEGMENT_HEADER
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def export_until(
    grpc_port: int, bodies: list[bytes], stop: threading.Event, acked: Callable[[], None]
) -> None:
    """Export `bodies` in turn over one gRPC channel until `stop` is set, calling `acked()` after
    each request the collector took; a refused one (back-pressure) is sent again 50 ms later."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        i = 0
        while not stop.is_set():
            try:
                export(bodies[i % len(bodies)], timeout=60)
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            i += 1
            acked()


TARGET = 15_000  # LLM spans/s stored by one process, everything on (issue #22)
TARGET_PLAIN = 25_000  # plain (non-LLM) spans/s, the same
ROUTES = ("/api/orders", "/api/orders/{id}", "/api/cart", "/health", "/api/search")
WORDS = (
    "the order shipped yesterday refund policy customer account invoice delivery status please "
    "check tracking number warehouse support agent answer question product"
).split(" ")


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < size:
        out.append(rng.choice(WORDS))
    return " ".join(out)[:size]


def build_requests(total: int, per_request: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    models = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "gemini-2.5-flash"]
    bodies = []
    for start in range(0, total, per_request):
        spans = []
        for _ in range(min(per_request, total - start)):
            model = rng.choice(models)
            prompt = [
                {"role": "system", "parts": [{"type": "text", "content": _text(rng, 300)}]},
                {"role": "user", "parts": [{"type": "text", "content": _text(rng, 1700)}]},
            ]
            reply = [
                {
                    "role": "assistant",
                    "finish_reason": "stop",
                    "parts": [{"type": "text", "content": _text(rng, 1000)}],
                }
            ]
            spans.append(
                make_span(
                    f"chat {model}",
                    {
                        sc.OPERATION_NAME: sc.OP_CHAT,
                        sc.PROVIDER_NAME: "openai",
                        sc.REQUEST_MODEL: model,
                        sc.RESPONSE_MODEL: model,
                        sc.USAGE_INPUT_TOKENS: rng.randint(300, 900),
                        sc.USAGE_OUTPUT_TOKENS: rng.randint(50, 300),
                        sc.INPUT_MESSAGES: json.dumps(prompt),
                        sc.OUTPUT_MESSAGES: json.dumps(reply),
                        sc.RESPONSE_FINISH_REASONS: ["stop"],
                        sc.REQUEST_TEMPERATURE: 0.3,
                        sc.RESPONSE_ID: f"chatcmpl-{rng.getrandbits(64):x}",
                        sc.USER_ID: f"user-{rng.randint(1, 500)}",
                        sc.SESSION_ID: f"s-{rng.randint(1, 5000)}",
                        sc.PROMPT_NAME: "support-answer",
                        sc.PROMPT_VERSION: "v3",
                    },
                    duration_ns=rng.randint(200, 4000) * 1_000_000,
                )
            )
        bodies.append(
            make_request(rng.choice(["checkout", "support", "search"]), *spans).SerializeToString()
        )
    return bodies


def build_plain_requests(total: int, per_request: int, seed: int = 7) -> list[bytes]:
    """Plain spans of a web service, no LLM call among them: an HTTP server span's usual
    attributes, each the root of its own trace."""
    rng = random.Random(seed)
    bodies = []
    for start in range(0, total, per_request):
        spans = []
        for _ in range(min(per_request, total - start)):
            route = rng.choice(ROUTES)
            status = rng.choice((200, 200, 200, 201, 404, 500))
            spans.append(
                make_span(
                    f"GET {route}",
                    {
                        "http.request.method": "GET",
                        "http.route": route,
                        "url.path": route.replace("{id}", str(rng.randint(1, 10**6))),
                        "http.response.status_code": status,
                        "server.address": "shop.internal",
                        "server.port": 8080,
                        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
                        "client.address": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    },
                    duration_ns=rng.randint(1, 300) * 1_000_000,
                    error=status >= 500,
                )
            )
        bodies.append(
            make_request(rng.choice(["checkout", "support", "search"]), *spans).SerializeToString()
        )
    return bodies


def send_all(endpoint: str, bodies: list[bytes], senders: int) -> tuple[int, int]:
    """Send every request, backing off on RESOURCE_EXHAUSTED; return (sent, pushbacks)."""
    pushbacks = 0
    lock = threading.Lock()
    queue = list(reversed(bodies))

    def worker() -> None:
        nonlocal pushbacks
        with grpc.insecure_channel(endpoint) as channel:
            export = channel.unary_unary(
                EXPORT, request_serializer=None, response_deserializer=None
            )
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                while True:
                    try:
                        export(body, timeout=60)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            raise
                        with lock:
                            pushbacks += 1
                        time.sleep(0.05)

    threads = [threading.Thread(target=worker) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies), pushbacks


@dataclass(frozen=True)
class MemorySplit:
    """A process's resident memory in bytes: its own (anonymous: Python's heap, the engine's
    allocations) and mapped files' pages (mostly chDB's library, as far as it has run)."""

    anon: int = 0
    file: int = 0

    @property
    def rss(self) -> int:
        return self.anon + self.file


def memory_split(pid: int) -> MemorySplit:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile", "RssShmem"):
                fields[name] = int(value.split()[0]) * 1024
    return MemorySplit(fields["RssAnon"], fields["RssFile"] + fields["RssShmem"])


@dataclass
class IngestResult:
    spans: int
    requests: int
    megabytes: float
    acked_s: float
    stored_s: float
    stored: int
    traces: int
    pushbacks: int
    base: MemorySplit
    peak: MemorySplit  # at the highest RSS sampled (every 50 ms)
    cpu_s: float  # the collector's CPU time (every thread) from the first request to stored
    table: str = "llm_calls"  # where the stored rows were counted

    @property
    def spans_per_s(self) -> float:
        return self.stored / self.stored_s

    @property
    def base_rss(self) -> int:
        return self.base.rss

    @property
    def peak_rss(self) -> int:
        return self.peak.rss


# The collector's counter (/api/health's "pipeline") of the rows it wrote into each table.
_WRITTEN = {"llm_calls": "llm_calls_written", "otel_traces": "spans_written"}


def _all_written(collector: RunningCollector, spool: Path, table: str, spans: int) -> bool:
    """Whether the collector has written every span sent (all of them acknowledged): its disk
    spool holds no record any more (a segment is deleted once the store has its rows; the
    active one is a header alone), read from the folder at no cost to the collector. Without a
    disk spool, its own count of the rows written (/api/health, polled every 50 ms: each call
    costs the collector ~4 ms of CPU, its event loop's and a store ping's, which at the bench's
    pace was ~20 µs per LLM span of what the bench measures)."""
    if spool.is_dir():
        for segment in spool.glob("*.seg"):
            try:
                if segment.stat().st_size > SEGMENT_HEADER.size:
                    return False
            except FileNotFoundError:  # released meanwhile
                continue
        return True
    health = httpx.get(f"{collector.http_url}/api/health", timeout=60).json()
    if health["pipeline"][_WRITTEN[table]] >= spans:
        return True
    time.sleep(0.05)
    return False


TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) and name of each live thread of process `pid`, by thread id;
    the main thread is named `main` (its OS name is the process's)."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        tid = int(task.name)
        threads[tid] = ("main" if tid == pid else name, (int(fields[11]) + int(fields[12])) / TICK)
    return threads


def thread_group(name: str) -> str:
    """Threads of one pool under one name: chDB numbers some (`QueryPipelineEx`), Python its
    executors' (`asyncio_3`, `ThreadPoolExecutor-0_1`)."""
    return re.sub(r"[_-]?\d+$", "", name) or name


# What each thread of a collector does, by its name (the collector's threads by their Python
# names without "assay-", gRPC's and the engine's by their OS names); the first role that
# names a thread is its.
EVENT_LOOP = "receivers: the event loop"
ROLES: tuple[tuple[str, frozenset[str]], ...] = (
    (EVENT_LOOP, frozenset({"MainThread"})),
    ("receivers: gRPC's own threads", frozenset({"grpc_global_tim", "event_engine", "lifeguard"})),
    (
        "spool fsync, API calls (asyncio's executor)",
        frozenset({"asyncio", "spool-fsync", "spool-sync"}),
    ),
    ("segment reader", frozenset({"reader"})),
    ("writer", frozenset({"writer"})),
    (
        "engine: merges and background pools",
        frozenset({"MergeMutate", "BgSchPool", "BgStrmSchPool", "BgMBSchPool", "Move", "Fetch"}),
    ),
)
ENGINE_OTHER = "engine: query and memory pools"  # any other thread without a Python name
PYTHON_OTHER = "other collector threads"  # any other Python thread
ENDED = "threads that ended during the run"
# Stages that await (their thread serves other requests meanwhile, which their thread CPU
# then counts): left out of a thread's stages, so in its "rest".
AWAITING = frozenset({"spool append + fsync"})


@dataclass
class Split:
    """Where one run's collector CPU went: seconds by thread (from the first request until
    every span was stored) and the collector's stage times over its life."""

    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)  # by thread id, OS name
    stages: dict[str, Any] = field(default_factory=dict)

    def _named(self) -> Iterator[tuple[str, bool, float]]:
        """(name, whether Python named it, seconds) of each thread."""
        python = self.stages.get("threads", {})
        for tid, (os_name, cpu) in self.cpu.items():
            own = python.get(str(tid), "")
            yield thread_group(own.removeprefix("assay-") or os_name), bool(own), cpu

    @property
    def threads(self) -> dict[str, float]:
        """Seconds by thread name: the collector's own threads by their Python names (the
        stage times name them), chDB's by their pools'."""
        by_name: dict[str, float] = {}
        for name, _, cpu in self._named():
            by_name[name] = by_name.get(name, 0.0) + cpu
        return by_name

    def roles(self) -> dict[str, dict[str, float]]:
        """Seconds by role (ROLES), then thread name."""
        by_role: dict[str, dict[str, float]] = {}
        for name, python, cpu in self._named():
            role = next(
                (role for role, names in ROLES if name in names),
                PYTHON_OTHER if python else ENGINE_OTHER,
            )
            names = by_role.setdefault(role, {})
            names[name] = names.get(name, 0.0) + cpu
        return by_role

    def thread_stages(self, thread: str) -> dict[str, float]:
        """The CPU seconds thread `thread` (its Python name) spent in each stage it entered,
        over the collector's life, but for the stages that await."""
        stages = self.stages.get("thread_cpu", {}).get(thread, {})
        return {stage: cpu for stage, cpu in stages.items() if stage not in AWAITING}


def watch_threads(
    split: Split,
) -> tuple[Callable[[RunningCollector], None], Callable[[RunningCollector], None]]:
    """The `before` and `at_stored` of run_ingest that fill `split.cpu`."""
    start: dict[int, tuple[str, float]] = {}

    def before(collector: RunningCollector) -> None:
        start.update(thread_cpu(collector.process.pid))

    def at_stored(collector: RunningCollector) -> None:
        for tid, (name, cpu) in thread_cpu(collector.process.pid).items():
            split.cpu[tid] = (name, cpu - start.get(tid, (name, 0.0))[1])

    return before, at_stored


# The threads whose stages the split shows beside their CPU: the role's Python thread name.
_STAGED = {EVENT_LOOP: "MainThread", "segment reader": "assay-reader", "writer": "assay-writer"}


def report_thread_split(result: IngestResult, split: Split) -> None:
    """The collector's CPU by role and thread, µs per stored span; for the event loop, the
    reader and the writer, the stages each ran (thread CPU over the collector's life: the
    ingest stages run only while the bench sends) and the rest."""
    per_span = 1e6 / result.stored
    roles = split.roles()
    ended = result.cpu_s - sum(cpu for names in roles.values() for cpu in names.values())
    print("  collector CPU by thread (µs per span, from the first request until all are stored)")
    order = [role for role, _ in ROLES] + [ENGINE_OTHER, PYTHON_OTHER]
    for role in order:
        names = roles.get(role, {})
        total = sum(names.values())
        shown = ", ".join(
            f"{name} {cpu * per_span:.1f}"
            for name, cpu in sorted(names.items(), key=lambda item: -item[1])
            if cpu * per_span >= 0.5
        )
        print(f"    {role:44} {total * per_span:7.1f}   {shown if len(names) > 1 else ''}")
        if role in _STAGED and total:
            stages = split.thread_stages(_STAGED[role])
            rest = total - sum(stages.values())
            parts = [f"{stage} {cpu * per_span:.1f}" for stage, cpu in stages.items()]
            for line in _wrap([*parts, f"outside these stages {rest * per_span:.1f}"]):
                print(f"      {line}")
    print(f"    {ENDED:44} {max(ended, 0.0) * per_span:7.1f}")
    print(f"    {'all':44} {result.cpu_s * per_span:7.1f}")


def _wrap(parts: list[str], width: int = 92) -> Iterator[str]:
    line = ""
    for part in parts:
        if line and len(line) + len(part) + 3 > width:
            yield line
            line = ""
        line = f"{line} · {part}" if line else part
    if line:
        yield line


def run_ingest(
    bodies: list[bytes],
    spans: int,
    senders: int,
    *args: str,
    before: Callable[[RunningCollector], None] | None = None,
    at_stored: Callable[[RunningCollector], None] | None = None,
    then: Callable[[RunningCollector, float], None] | None = None,
    storage: dict[str, tuple[int, int, int]] | None = None,
    store_from: Path | None = None,
    table: str = "llm_calls",
    **env: str,
) -> IngestResult:
    """Start a collector (flags `args`, settings from `env`) on an empty store, or on a copy of
    the store folder `store_from`; send every request, wait until all are stored (rows counted
    beyond those the store had, in `table`); `before(collector)` runs just before the first
    request, `at_stored(collector)` as soon as everything is written (when the CPU is read), and
    `then(collector, started)` before the collector stops."""
    with tempfile.TemporaryDirectory() as tmp:
        if store_from is not None:
            subprocess.run(["cp", "-a", str(store_from), str(Path(tmp) / "data")], check=True)
        collector = start_collector(Path(tmp) / "data", Path(tmp) / "collector.log", *args, **env)
        process = psutil.Process(collector.process.pid)
        base = memory_split(process.pid)
        peak = base
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                now = memory_split(process.pid)
                if now.rss > peak.rss:
                    peak = now
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        count_sql = f"SELECT count() AS n FROM assay.{table}"
        traces_sql = "SELECT count() AS n FROM assay.otel_traces"
        had, had_traces = (int(collector.query(q)[0]["n"]) for q in (count_sql, traces_sql))
        if before is not None:
            before(collector)
        cpu_before = sum(process.cpu_times()[:2])
        started = time.perf_counter()
        _, pushbacks = send_all(f"127.0.0.1:{collector.grpc_port}", bodies, senders)
        acked = time.perf_counter() - started
        stored, elapsed, cpu = 0, 0.0, 0.0
        spool = Path(tmp) / "data" / "spool"
        while stored < spans and time.perf_counter() - started < 600:
            if _all_written(collector, spool, table, spans):
                elapsed = time.perf_counter() - started
                cpu = sum(process.cpu_times()[:2]) - cpu_before
                if at_stored is not None:
                    at_stored(collector)
                response = httpx.post(
                    f"{collector.http_url}/api/query", json={"sql": count_sql}, timeout=60
                )
                stored = int(response.json()["rows"][0]["n"]) - had
                if stored < spans:  # written, but not all into `table`: look again later
                    time.sleep(0.05)
            else:
                time.sleep(0.02)
        if stored < spans:  # out of time
            elapsed = time.perf_counter() - started
            cpu = sum(process.cpu_times()[:2]) - cpu_before
        done.set()
        traces = int(collector.query(traces_sql)[0]["n"]) - had_traces
        if then is not None:
            then(collector, started)
        collector.stop()
        if storage is not None:  # opens the folder in this process: once per process (chDB)
            storage.update(measure_storage(Path(tmp) / "data"))
    return IngestResult(
        spans,
        len(bodies),
        sum(map(len, bodies)) / 1e6,
        acked,
        elapsed,
        stored,
        traces,
        pushbacks,
        base,
        peak,
        cpu,
        table,
    )


def measure_storage(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Per table: rows, compressed and uncompressed bytes on disk (active parts)."""
    from assay.collector.store.embedded import EmbeddedStore

    store = EmbeddedStore(folder, "assay")
    _, rows = store.query(
        "SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes)"
        " FROM system.parts WHERE database = 'assay' AND active GROUP BY table ORDER BY table"
    )
    store.close()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def report_storage(
    storage: dict[str, tuple[int, int, int]], calls: int, unit: str = "LLM call"
) -> None:
    print(f"  storage per {unit}  (compressed on disk / uncompressed)")
    total_c = total_u = 0
    for table, (_rows, compressed, uncompressed) in storage.items():
        if compressed >= calls:  # at least a byte per call: the tables that grow with traffic
            total_c, total_u = total_c + compressed, total_u + uncompressed
            print(
                f"    {table:24} {compressed / calls:8.0f} B / {uncompressed / calls:8.0f} B"
                f"   ({uncompressed / max(compressed, 1):.1f}x)"
            )
    print(f"    {'all tables':24} {total_c / calls:8.0f} B / {total_u / calls:8.0f} B")


def report(title: str, result: IngestResult) -> None:
    print(f"{title}")
    print(
        f"  acknowledged in       {result.acked_s:7.2f} s   "
        f"{result.spans / result.acked_s:9.0f} spans/s"
    )
    print(
        f"  stored (end to end)   {result.stored_s:7.2f} s   {result.spans_per_s:9.0f} spans/s   "
        f"({result.table} {result.stored}, otel_traces {result.traces})"
    )
    per_span = result.cpu_s / result.stored * 1e6
    print(
        f"  collector CPU         {result.cpu_s:7.2f} s   {per_span:9.0f} µs per span"
        f" (every thread; {result.cpu_s / result.stored_s:.2f} cores busy)"
    )
    print(f"  back-pressure replies {result.pushbacks}")
    base, peak = result.base, result.peak
    print(
        f"  collector RSS         {base.rss / 2**20:7.0f} MiB at start, "
        f"{peak.rss / 2**20:.0f} MiB peak (anonymous {base.anon / 2**20:.0f} -> "
        f"{peak.anon / 2**20:.0f}, files {base.file / 2**20:.0f} -> {peak.file / 2**20:.0f})"
    )


def parse_args(
    description: str, more: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if more is not None:
        more(parser)
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200, help="spans per OTLP request")
    parser.add_argument("--senders", type=int, default=2, help="concurrent gRPC clients")
    return parser.parse_args()


def add_stage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage-spans", type=int, default=10_000, help="spans of the per-stage table"
    )
    parser.add_argument("--only", choices=("e2e", "stages"), help="one of the two parts")
    parser.add_argument(
        "--flush-interval",
        default="0.5",
        help="the collector's flush_interval (its default; the tests' collectors use 0.1)",
    )
    parser.add_argument(
        "--no-redaction", action="store_true", help="end to end without the built-in patterns"
    )
    parser.add_argument(
        "--plain", action="store_true", help="plain spans of a web service, no LLM call"
    )


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_stage_args)
    if args.plain:
        print(f"building {args.spans} plain spans (an HTTP server's attributes) ...", flush=True)
        bodies = build_plain_requests(args.spans, args.batch)
    else:
        print(f"building {args.spans} spans (~2 KB prompt, ~1 KB response each) ...", flush=True)
        bodies = build_requests(args.spans, args.batch)
    if args.only != "stages":
        end_to_end(args, bodies)
    if args.only != "e2e":
        requests = -(-min(args.stage_spans, args.spans) // args.batch)  # whole requests
        print(flush=True)
        run = run_stages(bodies[:requests], min(requests * args.batch, args.spans))
        print_stages(run, "plain" if args.plain else "LLM")


def end_to_end(args: argparse.Namespace, bodies: list[bytes]) -> None:
    storage: dict[str, tuple[int, int, int]] = {}
    redact = "" if args.no_redaction else ",".join(BUILTIN_PATTERNS)
    split = Split()
    before, at_stored = watch_threads(split)
    with tempfile.TemporaryDirectory() as tmp:
        stages = Path(tmp) / "stages.json"
        result = run_ingest(
            bodies,
            args.spans,
            args.senders,
            before=before,
            at_stored=at_stored,
            storage=storage,
            table="otel_traces" if args.plain else "llm_calls",
            ASSAY_FLUSH_INTERVAL=args.flush_interval,
            ASSAY_REDACT=redact,
            ASSAY_STAGE_TIMES=str(stages),
        )
        split.stages = json.loads(stages.read_text()) if stages.exists() else {}
    kind, target = ("plain", TARGET_PLAIN) if args.plain else ("LLM", TARGET)
    report(
        f"\nIngest: {args.spans} {kind} spans, {result.megabytes:.0f} MB of OTLP, {len(bodies)} "
        f"requests, {args.senders} gRPC senders, {os.cpu_count()} cores, disk spool with fsync, "
        f"redaction {'on' if redact else 'off'}, flush_interval {args.flush_interval} s",
        result,
    )
    verdict = "MET" if result.spans_per_s >= target else "MISSED"
    print(f"  target                {verdict} (>= {target:,} {kind} spans/s, issue #22)")
    report_thread_split(result, split)
    report_storage(storage, args.spans, "span" if args.plain else "LLM call")


if __name__ == "__main__":
    main()
