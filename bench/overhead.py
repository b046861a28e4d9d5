"""Overhead benchmark: what Assay and the peer instrumentations add to each openai call.

Run (from the repository root, after `make install`)::

    .venv/bin/python bench/overhead.py [--measure cpu,instructions] [--export drop,otlp]
                                       [--content on,off] [--calls 600] [--rounds 3]
                                       [--instruction-calls 20] [--chunks 100]
                                       [--memory-calls 10000] [--only assay,openllmetry]

With the defaults (`--measure cpu`) it takes ten to thirty minutes on a 2-core machine,
depending on its other load (the first run also installs the peers' venvs). `--measure
instructions` (valgrind and gcc needed) takes about twenty minutes for all four setups.

What it does:

1. Creates (first run) or reuses one virtual environment per peer under `bench/.venvs/`
   (gitignored), installed from the package registry: their pins conflict with each other
   and with Assay's. `openai` is pinned to the version of `.venv` where the peer allows it
   (OpenLIT 1.45 requires openai < 3, so it runs on the newest 2.x).
2. Starts one fake OpenAI server (`collector/demo/fake_openai.py`) in its own process:
   real JSON bodies with usage, and streams of `--chunks` SSE chunks (role chunk, words,
   finish chunk, usage chunk); and one OTLP sink (a process that reads and discards each
   export request).
3. Runs `bench/overhead_worker.py` once per configuration (and round), each in a fresh
   subprocess with the configuration's venv: the real `openai` client makes the same
   chat calls (system + user message, temperature, max_tokens), plain and streamed
   (`stream_options.include_usage`). The worker switches the instrumentation off and on
   between batches of calls (it puts back the functions the set-up patched on the call
   path, openai's and the HTTP client's), so every figure is the instrumented calls against
   the same calls without it, in the same process.

Four setups, each its own table: `--export` `drop` (an SDK `SimpleSpanProcessor` whose
exporter drops every span: the instrumentation's own cost) and `otlp` (as users run it: the
SDK's `BatchSpanProcessor` and the OTLP/HTTP protobuf exporter to the local sink, each batch
of calls ending with `force_flush()` so the export thread's encoding and sending of its spans
counts in it), times `--content` `on` and `off`: every configuration captures prompt and
response content, or none does (Assay's `capture_content`, OpenLLMetry's
`TRACELOOP_TRACE_CONTENT`, OpenLIT's `capture_message_content`, openai-v2's
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`; only openai-v2 is off by default).

Two measures (`--measure`):

- `instructions`: each worker runs once under valgrind's callgrind, counting the
  instructions of every thread in phases of `--instruction-calls` plain calls (and a fifth
  as many streamed), without and then with the instrumentation. The count does not depend on
  the machine's load, so one run settles it; it is not time (a cache miss counts as one).
- `cpu`: process CPU time (every thread; the fake server's CPU is not counted) per call, in
  pairs of batches of `--batch-size` calls without and with the instrumentation, alternating
  which comes first; per round the median of the pairs' differences; the table shows the
  median over `--rounds` interleaved rounds (every configuration once per round, in a
  rotating order) and, in brackets, the lowest and highest round. "calling thread" is the
  part paid by the thread that made the call (the rest is the export thread). A start-up
  table follows: per configuration, the CPU and wall time of importing the instrumentation,
  the CPU of setting it up (`instrument()`, `openlit.init()`), and the RSS they added. On a
  loaded machine CPU time per call moves by tens of percent from one second to the next:
  compare within one run, and prefer the instruction counts for small differences.

"x Assay" is a peer's overhead divided by Assay's. "spans" per call confirms each
instrumentation was active (OpenLIT's defaults add an HTTP client span); "content" (drop
setup) says where the prompt text was found (span, log record, or none). Two rows are
references, not peers: "one bare SDK span per call", the floor that any instrumentation built
on the OpenTelemetry SDK pays (a current span, no attributes; for streams it ends before the
chunks), and "one SDK span + an LLM span's attributes", the same span carrying constant
copies of the attributes an LLM span has (the GenAI request, response and usage attributes,
and with content on the two message JSONs): what recording and exporting that data costs
before any instrumentation logic.

Memory: `--memory-calls N` (default 10,000; the issue's figure is `--memory-calls 100000`,
about ten minutes on a busy machine) makes N calls (one streamed in ten) in one process
uninstrumented and one with Assay, side by side, and prints RSS at the start, after
warm-up (5 %), at the middle and at the end. Flat from warm-up to the end means nothing
accumulates per call. `--calls 0` skips the CPU part, `--memory-calls 0` the memory part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callgrind import callgrind_library

from tests.peers.venvs import OPENAI_V2, OPENLIT, PeerUnavailable, build_venv

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKER = BENCH / "overhead_worker.py"
VENVS = BENCH / ".venvs"
MAIN_VENV = "main"  # the project's own .venv (the Python running this script)

_OPENAI = f"openai=={version('openai')}"
# Each peer's install (see shared reference peers.md): packages of its own venv.
PEER_VENVS: dict[str, list[str]] = {
    "openllmetry": [
        _OPENAI,
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-openai",
    ],
    "otel-v2": [
        _OPENAI,
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "httpx",
        *OPENAI_V2,
    ],
    "openlit": OPENLIT,  # OpenLIT 1.45 wants openai < 3: it brings its own
}


@dataclass(frozen=True)
class Config:
    name: str  # the worker's setup name
    label: str
    venv: str


EXPORTS = {
    "drop": "SimpleSpanProcessor, an exporter that drops every span",
    "otlp": "BatchSpanProcessor + OTLP/HTTP protobuf exporter to a local sink "
    "(force_flush at the end of each timed batch)",
}

# Rows that are not a peer: the subject and the reference floor.
NOT_PEERS = frozenset({"assay", "span-floor", "span-floor-attributes"})
CONFIGS = (
    Config("span-floor", "reference: one bare SDK span per call", MAIN_VENV),
    Config(
        "span-floor-attributes", "reference: one SDK span + an LLM span's attributes", MAIN_VENV
    ),
    Config("assay", "Assay", MAIN_VENV),
    Config("openllmetry", "OpenLLMetry (opentelemetry-instrumentation-openai)", "openllmetry"),
    Config("openlit-default", "OpenLIT 1.45, openlit.init() defaults", "openlit"),
    Config("openlit-best", "OpenLIT 1.45, openai only, no metrics/events", "openlit"),
    Config("otel-v2", "OTel opentelemetry-instrumentation-openai-v2", "otel-v2"),
)


# --- virtual environments ----------------------------------------------------------------------


def venv_python(venv: str) -> Path:
    if venv == MAIN_VENV:
        return Path(sys.executable)
    return VENVS / venv / "bin" / "python"


def ensure_venv(venv: str) -> Path:
    """The venv's Python, created and installed on first use; reused while its pins hold."""
    if venv == MAIN_VENV:
        return venv_python(venv)
    home = VENVS / venv
    if not (home / "bin" / "python").exists():
        print(f"creating {home.relative_to(ROOT)}: {' '.join(PEER_VENVS[venv])}", flush=True)
    try:
        return build_venv(home, PEER_VENVS[venv])
    except PeerUnavailable as exc:
        sys.exit(str(exc))


def client_stack(python: Path) -> str:
    """The versions that decide the uninstrumented cost of a call: openai and what it requires."""
    script = (
        "import importlib.metadata as m, json, re, sys\n"
        "names = ['openai'] + [re.split(r'[^A-Za-z0-9_.-]', r, maxsplit=1)[0]\n"
        "    for r in m.requires('openai') or () if 'extra ==' not in r]\n"
        "v = {n: m.version(n) for n in names}\n"
        "v['python'] = sys.version.split()[0]\n"
        "print(json.dumps(v, sort_keys=True))\n"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# --- the fake server ---------------------------------------------------------------------------


def _reply_of(chunks: int) -> str:
    # A streamed answer is a role chunk, one chunk per word, a finish chunk and a usage chunk.
    words = max(1, chunks - 3)
    vocabulary = "the order shipped on friday and tracking will update within two days".split()
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def serve_fake(chunks: int) -> None:
    """Serve the fake OpenAI API until stdin closes; print its base URL first."""
    sys.path.insert(0, str(ROOT))
    from assay.collector.demo.fake_openai import FakeOpenAI

    reply = _reply_of(chunks)
    with FakeOpenAI(reply=lambda request: reply) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()


@contextmanager
def fake_server(chunks: int, what: str = "--serve-fake") -> Iterator[str]:
    """The fake OpenAI API (or with `--serve-sink` the OTLP sink) in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, __file__, what, "--chunks", str(chunks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            sys.exit(f"the server of {what} did not start")
        yield base_url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# --- running the workers -----------------------------------------------------------------------


def _worker_command(
    python: Path,
    config: str,
    base_url: str,
    calls: int,
    batch_size: int,
    memory: bool = False,
    sink: str | None = None,
    content: str = "on",
) -> list[str]:
    command = [str(python), str(WORKER), config, base_url, "--calls", str(calls)]
    command += ["--otlp", sink] if sink else []
    command += ["--content", content]
    return command + (["--memory"] if memory else ["--batch-size", str(batch_size)])


def run_worker(
    python: Path,
    config: str,
    base_url: str,
    calls: int,
    batch_size: int,
    sink: str | None,
    content: str,
) -> dict[str, Any]:
    command = _worker_command(
        python, config, base_url, calls, batch_size, sink=sink, content=content
    )
    env = {**os.environ, "PYTHONPATH": "", "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(BENCH))
    if done.returncode != 0:
        sys.exit(f"the {config} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass
class Series:
    """One configuration's results, round by round."""

    label: str
    stack: str
    plain: list[float] = field(default_factory=list)  # per round: CPU µs per call
    stream: list[float] = field(default_factory=list)
    plain_thread: list[float] = field(default_factory=list)  # the calling thread's share
    stream_thread: list[float] = field(default_factory=list)
    # per round: the median over the worker's pairs of batches of instrumented minus bare CPU
    over: dict[str, list[float]] = field(default_factory=dict)
    spans_per_call: float = 0.0
    content: str = ""  # where the prompt text was found: span, log record, or none
    setup_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    chunks: int = 0
    import_cpu_ms: list[float] = field(default_factory=list)
    import_wall_ms: list[float] = field(default_factory=list)
    import_rss_mib: list[float] = field(default_factory=list)
    setup_rss_mib: list[float] = field(default_factory=list)


def run_rounds(
    plan: dict[str, tuple[Config, Path, str]],
    base_url: str,
    calls: int,
    rounds: int,
    batch_size: int,
    sink: str | None = None,
    content: str = "on",
) -> dict[str, Series]:
    series = {key: Series(config.label, stack) for key, (config, _, stack) in plan.items()}
    keys = list(plan)
    per_round = max(batch_size, calls // rounds)
    for round_number in range(rounds):
        shift = round_number % len(keys)  # rotate so no configuration always runs first
        order = keys[shift:] + keys[:shift]
        started = time.monotonic()
        for key in order:
            config, python, _ = plan[key]
            result = run_worker(python, config.name, base_url, per_round, batch_size, sink, content)
            entry = series[key]
            entry.plain.append(lower_quartile(result["plain_us"]))
            entry.stream.append(lower_quartile(result["stream_us"]))
            entry.plain_thread.append(lower_quartile(result["plain_thread_us"]))
            entry.stream_thread.append(lower_quartile(result["stream_thread_us"]))
            for kind in ("plain", "stream", "plain_thread", "stream_thread"):
                bare_kind = (
                    kind.replace("_thread", "_bare_thread") if "thread" in kind else f"{kind}_bare"
                )
                pairs = zip(result[f"{kind}_us"], result[f"{bare_kind}_us"], strict=True)
                entry.over.setdefault(kind, []).append(statistics.median(a - b for a, b in pairs))
            entry.spans_per_call = result["spans"] / result["calls"]
            entry.content = result["content"]
            entry.setup_ms.append(result["setup_cpu_ms"])
            entry.rss_mib.append(result["rss_after_setup"] / 2**20)
            entry.chunks = result["chunks"]
            entry.import_cpu_ms.append(result["import_cpu_ms"])
            entry.import_wall_ms.append(result["import_wall_ms"])
            entry.import_rss_mib.append((result["rss_after_import"] - result["rss_before"]) / 2**20)
            entry.setup_rss_mib.append(
                (result["rss_after_setup"] - result["rss_after_import"]) / 2**20
            )
        print(f"round {round_number + 1}/{rounds}: {time.monotonic() - started:.0f} s", flush=True)
    return series


def lower_quartile(values: Sequence[float]) -> float:
    """The batch that 3 in 4 batches were slower than: the others' bursts on this shared
    machine only ever add CPU time (caches, frequency), so the quieter batches tell the cost
    best; the lower quartile rather than the minimum, so one lucky batch does not decide."""
    if len(values) < 4:
        return min(values)
    return statistics.quantiles(values, n=4)[0]


# --- the report --------------------------------------------------------------------------------


def _overheads(entry: Series, base: Series, kind: str) -> list[float]:
    """Per round, the configuration's CPU per call over the same calls without it, measured
    in the same worker (pairs of batches, `overhead_worker.measure`); `base` is unused."""
    return entry.over[kind]


def _cell(values: Sequence[float]) -> str:
    return f"{statistics.median(values):7.0f} [{min(values):.0f}..{max(values):.0f}]"


def _print_lead(
    assay: tuple[float, float] | None,
    peers: dict[str, tuple[float, float]],
    overhead: dict[str, tuple[float, float]],
    label: Callable[[str], str],
    amount: Callable[[float], str],
) -> None:
    """The best peer's overhead for plain and streamed calls beside Assay's, and Assay's over
    the floor of an SDK span with the same attributes, in `amount`'s unit."""
    if assay is not None and peers:
        print()
        for index, kind in enumerate(("plain", "stream")):
            best = min(peers, key=lambda key: peers[key][index])
            print(
                f"best peer, {kind}: {label(best)} ({amount(peers[best][index])}); "
                f"Assay's overhead is {_ratio(assay[index], peers[best][index])} of it"
            )
    floor = overhead.get("span-floor-attributes")
    if assay is not None and floor is not None:
        print(
            "Assay over the floor of an SDK span with the same attributes: "
            f"{amount(assay[0] - floor[0])} plain, {amount(assay[1] - floor[1])} streamed"
        )


def _ratios(
    key: str,
    overhead: dict[str, tuple[float, float]],
    assay: tuple[float, float] | None,
    peers: dict[str, tuple[float, float]],
) -> tuple[str, str]:
    """A configuration's overhead (plain, streamed) over Assay's, for Assay and the peers."""
    if assay is None or (key not in peers and key != "assay"):
        return "", ""
    return _ratio(overhead[key][0], assay[0]), _ratio(overhead[key][1], assay[1])


def _ratio(peer: float, assay: float) -> str:
    return f"{peer / assay:.2f}" if assay > 0 else "inf"


def print_table(series: dict[str, Series], baselines: dict[str, str]) -> None:
    overhead: dict[str, tuple[float, float]] = {}
    for key, entry in series.items():
        if key not in baselines.values():
            base = series[baselines[entry.stack]]
            overhead[key] = (
                statistics.median(_overheads(entry, base, "plain")),
                statistics.median(_overheads(entry, base, "stream")),
            )
    assay = overhead.get("assay")
    peers = {k: v for k, v in overhead.items() if k not in NOT_PEERS}

    header = (
        f"{'configuration':<52} {'CPU µs/call plain':>18} {'stream':>9} "
        f"{'overhead µs plain [min..max]':>29} {'stream [min..max]':>24} "
        f"{'x Assay':>8} {'stream':>7} {'calling thread':>15} {'stream':>7} "
        f"{'spans':>6} {'content':>8} {'setup ms':>9} {'RSS MiB':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for key, entry in series.items():
        over_plain, over_stream = "-", "-"
        thread_plain, thread_stream = "-", "-"
        if key in overhead:
            base = series[baselines[entry.stack]]
            over_plain = _cell(_overheads(entry, base, "plain"))
            over_stream = _cell(_overheads(entry, base, "stream"))
            thread_plain = f"{statistics.median(_overheads(entry, base, 'plain_thread')):.0f}"
            thread_stream = f"{statistics.median(_overheads(entry, base, 'stream_thread')):.0f}"
        ratio_plain, ratio_stream = _ratios(key, overhead, assay, peers)
        print(
            f"{entry.label:<52} {statistics.median(entry.plain):18.0f} "
            f"{statistics.median(entry.stream):9.0f} {over_plain:>29} {over_stream:>24} "
            f"{ratio_plain:>8} {ratio_stream:>7} {thread_plain:>15} {thread_stream:>7} "
            f"{entry.spans_per_call:6.2f} {entry.content:>8} "
            f"{statistics.median(entry.setup_ms):9.0f} {statistics.median(entry.rss_mib):8.1f}"
        )
    _print_lead(assay, peers, overhead, lambda key: series[key].label, lambda v: f"{v:.0f} µs")
    print()
    for stack_key, base_key in baselines.items():
        print(f"client stack of {series[base_key].label}: {stack_key}")


def print_startup(series: dict[str, Series]) -> None:
    """Import and set-up cost per configuration (medians over the rounds)."""
    header = (
        f"{'start-up':<52} {'import CPU ms':>14} {'wall ms':>8} {'setup CPU ms':>13} "
        f"{'RSS MiB import':>15} {'setup':>6} {'RSS after':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for entry in series.values():
        print(
            f"{entry.label:<52} {statistics.median(entry.import_cpu_ms):14.0f} "
            f"{statistics.median(entry.import_wall_ms):8.0f} "
            f"{statistics.median(entry.setup_ms):13.0f} "
            f"{statistics.median(entry.import_rss_mib):15.1f} "
            f"{statistics.median(entry.setup_rss_mib):6.1f} "
            f"{statistics.median(entry.rss_mib):10.1f}"
        )


# --- instructions (callgrind) ------------------------------------------------------------------


def count_instructions(
    plan: dict[str, tuple[Config, Path, str]],
    base_url: str,
    calls: int,
    sink: str | None,
    content: str,
    jobs: int,
) -> dict[str, dict[str, Any]]:
    """Each configuration's worker once under callgrind, `jobs` at a time (the counts do not
    depend on the machine's load): instructions per call with and without it."""
    library = callgrind_library()
    measured = {key: value for key, value in plan.items() if value[0].name != "none"}

    def run(key: str) -> tuple[str, dict[str, Any]]:
        config, python, _ = measured[key]
        with tempfile.TemporaryDirectory() as dumps:
            command = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={dumps}/cg.%p",
                *_worker_command(
                    python, config.name, base_url, calls, 1, sink=sink, content=content
                ),
                "--callgrind",
                str(library),
            ]
            env = {
                **os.environ,
                "PYTHONPATH": "",
                "PYTHONHASHSEED": "0",
                "OVERHEAD_CALLGRIND_OUT": f"{dumps}/cg",
            }
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(BENCH))
        if done.returncode != 0:
            sys.exit(f"the {config.name} worker failed under callgrind:\n{done.stderr[-3000:]}")
        return key, json.loads(done.stdout)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = dict(pool.map(run, measured))
    return {key: results[key] for key in measured}


def print_instructions(
    plan: dict[str, tuple[Config, Path, str]], results: dict[str, dict[str, Any]]
) -> None:
    overhead = {
        key: tuple(
            r[f"{kind}_instructions"] - r[f"{kind}_bare_instructions"]
            for kind in ("plain", "stream")
        )
        for key, r in results.items()
    }
    assay = overhead.get("assay")
    peers = {k: v for k, v in overhead.items() if k not in NOT_PEERS}
    header = (
        f"{'configuration':<52} {'k instr/call bare plain':>24} {'stream':>8} "
        f"{'overhead k instr plain':>23} {'stream':>8} {'x Assay':>8} {'stream':>7} {'spans':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        ratio_plain, ratio_stream = _ratios(key, overhead, assay, peers)
        print(
            f"{plan[key][0].label:<52} {r['plain_bare_instructions'] / 1e3:24.0f} "
            f"{r['stream_bare_instructions'] / 1e3:8.0f} {overhead[key][0] / 1e3:23.0f} "
            f"{overhead[key][1] / 1e3:8.0f} {ratio_plain:>8} {ratio_stream:>7} "
            f"{r['spans'] / r['calls']:6.2f}"
        )
    _print_lead(
        assay,
        peers,
        overhead,
        lambda key: plan[key][0].label,
        lambda v: f"{v / 1e3:.0f}k instructions",
    )


class _Sink(BaseHTTPRequestHandler):
    """Takes an OTLP/HTTP export and discards it: 200 with an empty response message."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_sink() -> None:
    """Serve the OTLP sink until stdin closes; print its base URL first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


def print_memory(base_url: str, calls: int) -> None:
    print(f"\nmemory: RSS over {calls:,} calls (one streamed in ten), spans dropped", flush=True)
    runs = {
        label: subprocess.Popen(
            _worker_command(Path(sys.executable), config, base_url, calls, 1, memory=True),
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(BENCH),
        )
        for config, label in (("none", "uninstrumented"), ("assay", "Assay"))
    }  # side by side: RSS does not depend on the CPU the other one takes
    for label, process in runs.items():
        out, _ = process.communicate()
        if process.returncode != 0:
            sys.exit(f"the {label} memory run failed")
        result = json.loads(out)
        samples = [(int(done), int(rss)) for done, rss in result["rss"]]
        warm = next(s for s in samples if s[0] >= calls // 20)
        middle = min(samples, key=lambda s: abs(s[0] - calls // 2))
        end = samples[-1]

        def mib(sample: tuple[int, int]) -> str:
            return f"{sample[1] / 2**20:.1f} MiB @ {sample[0]:,}"

        growth = (end[1] - warm[1]) / 2**20
        print(
            f"  {label:<15} start {mib(samples[0])}; warm {mib(warm)}; middle {mib(middle)}; "
            f"end {mib(end)}; growth after warm-up {growth:+.1f} MiB ({result['spans']:,} spans)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="CPU overhead per openai call: Assay against the peer instrumentations."
    )
    parser.add_argument(
        "--calls", type=int, default=600, help="plain and streamed calls per configuration"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--batch-size", type=int, default=10, help="calls per timed batch")
    parser.add_argument("--chunks", type=int, default=100, help="chunks per streamed answer")
    parser.add_argument(
        "--memory-calls", type=int, default=10_000, help="calls of the RSS run (0: skip)"
    )
    parser.add_argument("--only", default="", help="comma-separated configurations to run")
    parser.add_argument(
        "--export", default="drop,otlp", help="export setups to run: drop, otlp or both"
    )
    parser.add_argument(
        "--content",
        default="on,off",
        help="content capture in every configuration: on, off or both",
    )
    parser.add_argument(
        "--measure",
        default="cpu",
        help="cpu (CPU time, interleaved rounds), instructions (callgrind, one run), or both",
    )
    parser.add_argument(
        "--instruction-calls", type=int, default=20, help="plain calls per counted phase"
    )
    parser.add_argument(
        "--instruction-jobs", type=int, default=2, help="workers under callgrind at a time"
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.chunks)
        return
    if args.serve_sink:
        serve_sink()
        return
    exports = [name for name in args.export.split(",") if name]
    if not exports or set(exports) - {"drop", "otlp"}:
        sys.exit("--export takes drop, otlp or drop,otlp")
    measures = {name for name in args.measure.split(",") if name}
    if not measures or measures - {"cpu", "instructions"}:
        sys.exit("--measure takes cpu, instructions or cpu,instructions")
    contents = [name for name in args.content.split(",") if name]
    if not contents or set(contents) - {"on", "off"}:
        sys.exit("--content takes on, off or on,off")

    wanted = {name for name in args.only.split(",") if name}
    unknown = wanted - {config.name for config in CONFIGS}
    if unknown:
        sys.exit(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    configs = [c for c in CONFIGS if not wanted or c.name in wanted]

    # One uninstrumented baseline per distinct client stack (openai and HTTP library versions).
    plan: dict[str, tuple[Config, Path, str]] = {}
    baselines: dict[str, str] = {}
    main_python = venv_python(MAIN_VENV)
    main_stack = client_stack(main_python)
    baselines[main_stack] = "none"
    plan["none"] = (Config("none", "uninstrumented", MAIN_VENV), main_python, main_stack)
    for config in configs:
        python = ensure_venv(config.venv)
        stack = main_stack if config.venv == MAIN_VENV else client_stack(python)
        if stack not in baselines:
            key = f"none@{config.venv}"
            baselines[stack] = key
            label = f"uninstrumented ({config.venv} venv)"
            plan[key] = (Config("none", label, config.venv), python, stack)
        plan[config.name] = (config, python, stack)

    digest = hashlib.sha1(_reply_of(args.chunks).encode()).hexdigest()[:8]
    cpu_part = (
        f"CPU: {args.calls} plain + {args.calls} streamed calls per configuration in "
        f"{args.rounds} interleaved rounds; "
        if "cpu" in measures and args.calls > 0
        else ""
    )
    print(
        f"{cpu_part}{args.chunks} chunks per stream (reply {digest}); {os.cpu_count()} CPUs",
        flush=True,
    )
    with fake_server(args.chunks) as base_url, fake_server(0, "--serve-sink") as sink:
        setups = [(export, content) for export in exports for content in contents]
        for export, content in setups if "instructions" in measures else ():
            print(
                f"\ninstructions per call (callgrind), export setup: {EXPORTS[export]}; "
                f"content capture {content}; {args.instruction_calls} plain and "
                f"{max(1, args.instruction_calls // 5)} streamed calls per phase",
                flush=True,
            )
            sink_url = sink if export == "otlp" else None
            results = count_instructions(
                plan, base_url, args.instruction_calls, sink_url, content, args.instruction_jobs
            )
            print_instructions(plan, results)
        for export, content in setups if args.calls > 0 and "cpu" in measures else ():
            print(f"\nexport setup: {EXPORTS[export]}; content capture {content}", flush=True)
            series = run_rounds(
                plan,
                base_url,
                args.calls,
                args.rounds,
                args.batch_size,
                sink if export == "otlp" else None,
                content,
            )
            print_table(series, baselines)
            print_startup(series)
        if args.memory_calls > 0:
            print_memory(base_url, args.memory_calls)


if __name__ == "__main__":
    main()
