"""A collector that goes away while an experiment runs: the items go on running, and what the
run computed (and paid for) comes back to the caller with the error, never thrown away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import start_collector

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

# The experiment, in a process of its own (evaluate turns the instrumentation on): its task
# kills the collector (the pid in argv) at the sixth item, and goes on once its port refuses.
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, socket, sys, time
    from urllib.parse import urlparse
    from assay.evaluators import Dataset, RunNotRecorded, evaluate, exact_match

    pid = int(sys.argv[1])
    port = urlparse(os.environ["ASSAY_URL"]).port
    items = [{"id": f"q{i}", "input": i, "expected": str(i)} for i in range(12)]
    dataset = Dataset("outage", items)

    def task(i):
        if i == 5:
            os.kill(pid, signal.SIGKILL)
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                except OSError:
                    break
                time.sleep(0.1)
        return str(i)

    try:
        evaluate(dataset, task, [exact_match()], experiment="outage", concurrency=1,
                 progress=False)
    except RunNotRecorded as exc:
        result = exc.result
        print(json.dumps({
            "error": str(exc),
            "status": result.status,
            "items": [[item.item_id, item.status, item.output] for item in result.items],
            "mean": result.summary["exact_match"].mean,
        }))
    """
)


def test_the_results_of_a_run_whose_collector_went_away_come_back_with_the_error(
    tmp_path: Path,
) -> None:
    collector = start_collector(tmp_path / "data", tmp_path / "collector.log")
    script = tmp_path / "outage.py"
    script.write_text(SCRIPT)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    environment["ASSAY_URL"] = collector.http_url
    try:
        done = subprocess.run(
            [sys.executable, str(script), str(collector.process.pid)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        collector.stop()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "completed"
    assert report["items"] == [[f"q{i}", "ok", str(i)] for i in range(12)]
    assert report["mean"] == 1.0
    assert "could not record" in report["error"] and ".result" in report["error"]
