"""Builds `assay-0.1.0-folder.tar.gz`: a storage folder as Assay 0.1.0 (main at a3a53d8, the
previous release) leaves it, for the upgrade tests. Not a test; run it with that release:

    git archive a3a53d8 | tar -x -C /tmp/prev && /work/wt/mkvenv.sh /tmp/prev
    /tmp/prev/.venv/bin/python tests/reliability/data/build_previous_release.py

It runs 0.1.0's own collector twice on one folder, over OTLP/HTTP like any client:
1. 30 LLM calls of service `v0-stored` (with online scores) and 5 of their log events are
   stored, and the collector stops cleanly: the spool is drained, so 0.1.0 numbers its next
   segment 1 again (the bug of issue #14).
2. 20 LLM calls of service `v0-spooled` are acknowledged, and the collector is killed before
   its writer ran: they are left in spool segment 1, format 1 (no header). 0.1.0 itself would
   replay them with the token of step 1's segment 1 and lose them; a newer collector must
   store them.
The result is packed without the chDB lock and temporary files (about 40 KB compressed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "assay-0.1.0-folder.tar.gz"
ASSAY = Path(sys.executable).parent / "assay"
RULES = "evaluation:\n  rules:\n    - evaluators: [{latency_budget: {ms: 3000}}]\n"
# 2099-01-01: the tables expire rows 90 days after their timestamp (TTL), and a test reading
# this folder years from now must still find them. (DateTime reaches 2106.)
START_NS = 4_070_908_800 * 1_000_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def attribute(key: str, value: str | int) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def llm_spans(service: str, count: int, first: int) -> dict[str, object]:
    spans = []
    for i in range(first, first + count):
        start = START_NS + i * 1_000_000_000
        spans.append(
            {
                "traceId": f"{i:032x}",
                "spanId": f"{i:016x}",
                "name": "chat gpt-4o-mini",
                "kind": 3,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + 800_000_000),
                "attributes": [
                    attribute("gen_ai.operation.name", "chat"),
                    attribute("gen_ai.provider.name", "openai"),
                    attribute("gen_ai.request.model", "gpt-4o-mini"),
                    attribute("gen_ai.response.model", "gpt-4o-mini"),
                    attribute("gen_ai.usage.input_tokens", 100 + i),
                    attribute("gen_ai.usage.output_tokens", 20 + i),
                    attribute(
                        "gen_ai.input.messages",
                        json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": f"q{i}"}]}]
                        ),
                    ),
                    attribute(
                        "gen_ai.output.messages",
                        json.dumps(
                            [{"role": "assistant", "parts": [{"type": "text", "content": f"a{i}"}]}]
                        ),
                    ),
                ],
            }
        )
    resource = {"attributes": [attribute("service.name", service)]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def log_events(service: str, count: int) -> dict[str, object]:
    records = [
        {
            "timeUnixNano": str(START_NS + i * 1_000_000_000),
            "severityText": "INFO",
            "body": {"stringValue": f"log {i} of {service}"},
            "traceId": f"{i:032x}",
            "spanId": f"{i:016x}",
        }
        for i in range(count)
    ]
    resource = {"attributes": [attribute("service.name", service)]}
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": records}]}]}


class Collector:
    def __init__(self, folder: Path, config: Path, log: Path, **env: str) -> None:
        self.http = free_port()
        command = [str(ASSAY), "collector", "--storage", str(folder), "--config", str(config)]
        command += ["--grpc-port", str(free_port()), "--http-port", str(self.http)]
        self.process = subprocess.Popen(
            command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
        RUNNING.append(self.process)
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{self.url}/api/health", timeout=1)
                return
            except OSError:
                time.sleep(0.25)
        raise SystemExit(f"the collector did not start; see {log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        return dict(json.loads(urllib.request.urlopen(request, timeout=30).read() or b"{}"))

    def count(self, sql: str) -> int:
        rows = self.post("/api/query", {"sql": sql})["rows"]
        return int(next(iter(rows[0].values())))  # type: ignore[index]

    def wait_for(self, sql: str, wanted: int) -> None:
        for _ in range(240):
            if self.count(sql) >= wanted:
                return
            time.sleep(0.25)
        raise SystemExit(f"never got {wanted} from {sql}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="assay-0.1.0-"))
    try:
        build(work)
    finally:
        for process in RUNNING:
            if process.poll() is None:
                process.kill()


RUNNING: list[subprocess.Popen[bytes]] = []


def build(work: Path) -> None:
    folder, config, log = work / "assay-data", work / "assay.yaml", work / "collector.log"
    config.write_text(RULES)

    first = Collector(folder, config, log)
    first.post("/v1/traces", llm_spans("v0-stored", 30, 0))
    first.post("/v1/logs", log_events("v0-stored", 5))
    first.wait_for("SELECT count() FROM llm_calls WHERE service_name = 'v0-stored'", 30)
    first.wait_for("SELECT count() FROM scores WHERE source = 'online'", 30)
    first.wait_for("SELECT count() FROM otel_logs", 5)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(60) == 0

    # Nothing is sealed for an hour: the writer never sees these before the kill.
    second = Collector(folder, config, log, ASSAY_FLUSH_INTERVAL="3600")
    second.post("/v1/traces", llm_spans("v0-spooled", 20, 100))
    second.process.send_signal(signal.SIGKILL)
    second.process.wait(60)
    segments = sorted((folder / "spool").glob("*.seg"))
    assert [s.name for s in segments] == ["000000000001.seg"], segments
    assert segments[0].read_bytes()[:4] == b"ASR1"  # format 1: the file starts with a record

    with tarfile.open(OUT, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.name == "status" or relative.parts[0] in ("tmp", "user_files"):
                continue  # chDB's lock file and scratch space
            tar.add(path, arcname=str(Path("assay-data") / relative), recursive=False)
    print(f"{OUT}: {OUT.stat().st_size} bytes; log in {log}")


if __name__ == "__main__":
    main()
