"""The embedded engine's library pages unmapped once the collector is ready: the resident file
pages go, the pages copied on write stay, and the engine runs on as before. In a child process,
since the mappings are the process's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

if not sys.platform.startswith("linux"):
    pytest.skip("/proc/self/smaps and madvise: Linux only", allow_module_level=True)

_CHILD = """
import json, sys
import chdb
from assay.collector.engine_pages import ENGINE_MODULE, unmap_engine_library

path = sys.modules[ENGINE_MODULE].__file__

def resident():  # KiB of the library resident, by kind: the file's, and copied on write
    out = {"file": 0, "copied": 0}
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split(None, 5)
            if fields and not fields[0].endswith(":"):
                inside = len(fields) == 6 and fields[5].rstrip("\\n") == path
            elif inside and fields[0] == "Rss:":
                out["file"] += int(fields[1])
            elif inside and fields[0] == "Anonymous:":
                out["file"] -= int(fields[1])
                out["copied"] += int(fields[1])
    return out

chdb.query("SELECT count() FROM system.functions")  # the engine started, and ran a query
before = resident()
advised = unmap_engine_library()
after = resident()
answer = str(chdb.query("SELECT sum(number) FROM numbers(1000000)", "CSV")).strip()
print(json.dumps({"before": before, "after": after, "advised": advised, "answer": answer}))
"""


def _run(body: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_engines_library_pages_leave_and_it_runs_on() -> None:
    out = _run(_CHILD)
    before, after = out["before"], out["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    # Start-up alone leaves well over 100 MiB of the library resident; nearly none stays.
    assert before["file"] > 100 * 1024
    assert after["file"] < before["file"] // 10
    # What the process wrote into the library's mappings (relocations) is its own: kept.
    assert after["copied"] == before["copied"] > 0
    assert isinstance(out["advised"], int) and out["advised"] > 400 << 20
    # The code it needs next comes back from the file: the engine answers as before.
    assert out["answer"] == "499999500000"


def test_nothing_happens_without_the_engine() -> None:
    out = _run(
        "import json, sys\n"
        "from assay.collector.engine_pages import unmap_engine_library\n"
        "advised = unmap_engine_library()\n"
        "print(json.dumps({'advised': advised, 'loaded': 'chdb' in sys.modules}))\n"
    )
    assert out == {"advised": 0, "loaded": False}
