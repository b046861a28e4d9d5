"""The allocators as the collector sets them: glibc's large buffers unmapped when freed, freed
memory given back after each segment, and the embedded engine's large blocks given back when
freed. Each case runs in a child process, since the settings are process-wide."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from assay.collector.allocator import ENGINE_MALLOC_VARIABLE

pytestmark = pytest.mark.subprocess

if not sys.platform.startswith("linux"):
    pytest.skip("glibc's allocator only", allow_module_level=True)

_PRELUDE = """
import ctypes
from assay.collector.allocator import release_free_memory, tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped():  # bytes in chunks mapped on their own
    return libc.mallinfo2().hblkhd

def anonymous():  # this process's own resident memory
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("RssAnon:"))
    return int(line.split()[1]) * 1024
"""


def _run(body: str, engine_malloc_conf: str | None = None) -> str:
    script = _PRELUDE + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k != ENGINE_MALLOC_VARIABLE}
    if engine_malloc_conf is not None:
        env[ENGINE_MALLOC_VARIABLE] = engine_malloc_conf
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# A 4 MiB buffer freed, then a 1 MiB one taken: how glibc serves the second.
_AFTER_A_LARGE_FREE = """
big = bytearray(4 << 20)
del big
before = mapped()
buffer = bytearray(1 << 20)
print(mapped() - before >= 1 << 20)
"""


def test_a_large_buffer_is_mapped_on_its_own_even_after_a_larger_one_was_freed() -> None:
    # glibc alone raises its threshold to the size of the freed 4 MiB buffer, so the next
    # megabyte comes from (and, freed, stays in) the heap; the collector's setting keeps it
    # mapped on its own, so freeing it returns it to the system.
    assert _run(_AFTER_A_LARGE_FREE) == "False"
    assert _run("print(tune_allocator())" + _AFTER_A_LARGE_FREE) == "True\nTrue"


def test_released_memory_leaves_the_process() -> None:
    # 100 MiB of 1 KiB strings (glibc's, not Python's small-object allocator), freed under a
    # string allocated after them, so glibc cannot give the top of its heap back by itself.
    out = _run(
        """
        tune_allocator()
        strings = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
        pinned = bytes(2000)
        del strings
        freed = anonymous()
        release_free_memory()
        print((freed - anonymous()) >> 20)
        """
    )
    assert int(out) >= 50


# The engine builds a ~110 MB array of strings and frees it; how much of it the process still
# holds right after, in MiB, and the engine's threshold for large blocks.
_AFTER_AN_ENGINE_QUERY = """
import re
import chdb
connection = chdb.connect(":memory:")
connection.query("SELECT 1")
before = anonymous()
connection.query(
    "SELECT length(groupArray(repeat('x', 100) || toString(number))) FROM numbers(1000000)"
)
held = (anonymous() - before) >> 20
stats = connection.query("SELECT * FROM system.jemalloc_stats", "TSV").data()
print(held, re.search(r"opt.oversize_threshold: (\\d+)", stats).group(1))
"""


def test_a_lean_engine_gives_its_large_blocks_back_when_freed() -> None:
    # chDB's jemalloc keeps a freed block resident for seconds (its dirty_decay_ms), as it does
    # by default; `engine_memory: lean` sends blocks over 256 KiB to the arena that gives them
    # back at once.
    for tuned in ("", "tune_allocator()\n"):
        held, threshold = _run(tuned + _AFTER_AN_ENGINE_QUERY).split()
        assert int(held) > 200 and int(threshold) == 64 << 20
    held, threshold = _run("tune_allocator(lean_engine=True)" + _AFTER_AN_ENGINE_QUERY).split()
    assert int(held) < 50 and int(threshold) == 256 << 10


def test_the_operators_engine_allocator_settings_are_kept() -> None:
    out = _run(
        "import os\ntune_allocator(lean_engine=True)\nprint(os.environ['JE_MALLOC_CONF'])"
        + _AFTER_AN_ENGINE_QUERY,
        engine_malloc_conf="oversize_threshold:1048576",
    )
    conf, _, threshold = out.split()
    assert conf == "oversize_threshold:1048576" and int(threshold) == 1 << 20
