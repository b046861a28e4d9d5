"""The first start after an upgrade, on a store an older Assay wrote: how long until the
collector answers, how long its background work on the older rows takes, its peak RSS, and
whether every call is there once (docs/capacity.md, "Upgrading a store").

    git worktree add --detach /work/wt/old-a3a53d8 a3a53d8 && make -C /work/wt/old-a3a53d8 install
    .venv/bin/python bench/upgrade_start.py --old /work/wt/old-a3a53d8 --calls 200000

The older checkout's own collector stores `--calls` LLM spans sent over OTLP/HTTP (JSON, 500 a
request) and is killed (kill -9) right after the last is acknowledged, so spool segments are
left; this checkout's collector then starts on the same folder. Run it on a copy (`--keep`
keeps the folder the old collector left, and measures copies of it, `--rounds` times)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DONE = "agent rows of spans stored before migration 011 written"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(python: Path, storage: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    grpc, http = free_port(), free_port()
    ports = ["--grpc-port", str(grpc), "--http-port", str(http)]
    process = subprocess.Popen(
        [str(python), "-m", "assay.collector", "collector", "--storage", str(storage), *ports],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{http}"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the collector stopped: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.1)


def span(n: int, now: int) -> dict[str, object]:
    def attr(key: str, value: object) -> dict[str, object]:
        kind = "intValue" if isinstance(value, int) else "stringValue"
        return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}

    question = [
        {"role": "user", "parts": [{"type": "text", "content": f"question {n}" + "x" * 300}]}
    ]
    return {
        "traceId": f"{n + 1:032x}",
        "spanId": f"{n + 1:016x}",
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(now + n * 1000),
        "endTimeUnixNano": str(now + n * 1000 + 800_000_000),
        "attributes": [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.system", "openai"),
            attr("gen_ai.request.model", "gpt-4o-mini"),
            attr("gen_ai.usage.input_tokens", 100),
            attr("gen_ai.usage.output_tokens", 20),
            attr("gen_ai.conversation.id", f"session-{n % 997}"),
            attr("gen_ai.input.messages", json.dumps(question)),
        ],
    }


def send(url: str, calls: int) -> None:
    now = time.time_ns() - 3600 * 1_000_000_000
    for first in range(0, calls, 500):
        spans = [span(n, now) for n in range(first, min(first + 500, calls))]
        body = {
            "resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]
        }
        request = urllib.request.Request(
            f"{url}/v1/traces", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=60).read()


def query(url: str, sql: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}/api/query", json.dumps({"sql": sql}).encode(), {"Content-Type": "application/json"}
    )
    rows: list[dict[str, object]] = json.load(urllib.request.urlopen(request, timeout=120))["rows"]
    return rows[0]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def upgrade(folder: Path, calls: int) -> None:
    log = folder / "upgrade.log"
    began = time.monotonic()
    process, url = start(Path(sys.executable), folder / "data", log)
    healthy = time.monotonic() - began
    while DONE not in log.read_text() and time.monotonic() - began < 1800:
        time.sleep(0.5)
    background = time.monotonic() - began
    while json.load(urllib.request.urlopen(f"{url}/api/health", timeout=10))["spool"]["bytes"]:
        time.sleep(0.2)  # the segments the old collector left, replayed
    found = query(
        url,
        "SELECT (SELECT count() FROM llm_calls) AS calls,"
        " (SELECT uniqExact(span_id) FROM llm_calls) AS distinct_calls,"
        " (SELECT sum(spans) FROM trace_summary) AS summarized_spans,"
        " (SELECT sum(calls) FROM llm_calls_1m) AS rollup_calls",
    )
    print(
        f"healthy after {healthy:.1f} s, older rows done after {background:.1f} s,"
        f" peak RSS {peak_rss_mib(process.pid):.0f} MiB; {found} (sent {calls})"
    )
    process.send_signal(signal.SIGTERM)
    process.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="an older checkout, installed")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the old folder here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assay-upgrade-"))
    old = work / "old"
    old.mkdir()
    process, url = start(args.old / ".venv" / "bin" / "python", old / "data", old / "old.log")
    send(url, args.calls)
    os.kill(process.pid, signal.SIGKILL)  # segments acknowledged, not all stored
    process.wait()
    print(f"left in the spool: {len(list((old / 'data' / 'spool').glob('*.seg')))} segment(s)")
    for _ in range(args.rounds):
        copy = work / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(old, copy, symlinks=True)  # chDB links metadata/assay
        upgrade(copy, args.calls)
    if args.keep:
        shutil.copytree(old, args.keep, symlinks=True)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
