"""Counting instructions with valgrind's callgrind: the small library of client requests a
measured process loads (through ctypes) to count only its phases, and the totals of the dumps
it leaves. Standard library only: the overhead bench's workers import it from the peers' venvs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

# cg_start() counts from zero, cg_dump(label) writes a dump named by `label` and stops counting.
_CALLGRIND_C = """
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); CALLGRIND_STOP_INSTRUMENTATION; }
int cg_running(void) { return RUNNING_ON_VALGRIND; }
"""
LIBRARY = Path(__file__).resolve().parent / ".venvs" / "callgrind" / "libcallgrind_requests.so"


def callgrind_library() -> Path:
    """The library of callgrind client requests, compiled on first use."""
    if LIBRARY.exists():
        return LIBRARY
    if not (shutil.which("valgrind") and shutil.which("gcc")):
        sys.exit("counting instructions needs valgrind and gcc (and valgrind's headers)")
    LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    source = LIBRARY.with_suffix(".c")
    source.write_text(_CALLGRIND_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(LIBRARY), str(source)], check=True)
    return LIBRARY


def dump_totals(paths: Iterable[str | Path]) -> dict[str, int]:
    """Each dump's label (its `cg_dump` argument) and the instructions it counted."""
    totals = {}
    for path in paths:
        label = total = None
        for line in Path(path).read_text(errors="replace").splitlines():
            if line.startswith("desc: Trigger: Client Request: "):
                label = line.removeprefix("desc: Trigger: Client Request: ")
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                break
        if label and total is not None:
            totals[label] = total
    return totals


def count_script(script: str | Path, arguments: list[str]) -> dict[str, int]:
    """Run `script` with `arguments` and `--child <library>` under callgrind, counting only
    what it counts between `cg_start` and `cg_dump`; each dump's label and its instructions."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(script),
                *arguments,
                "--child",
                str(callgrind_library()),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return dump_totals(out.parent.glob(out.name + ".*"))
