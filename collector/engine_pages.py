"""The embedded engine's library pages that only its start-up read, unmapped once the collector is
ready: resident file pages, not the process's own (anonymous) memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from dataclasses import dataclass

log = logging.getLogger("assay.collector.engine_pages")

# madvise(2): the pages leave this process's page tables; those of a private file mapping come
# back from the file on the next access. MADV_PAGEOUT would evict them from the page cache too,
# but skips every page another process maps: the same chDB library in another collector or a
# test run on the machine (installers hard-link it) kept them all resident.
MADV_DONTNEED = 4
# The module chDB's engine is loaded with (a ~530 MiB shared library).
ENGINE_MODULE = "chdb._chdb"


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    writable: bool
    anonymous_kib: int  # pages copied on write: the process's own, not the file's


def _engine_mappings(path: str) -> list[_Mapping]:
    mappings: list[_Mapping] = []
    header: tuple[int, int, bool] | None = None  # the library's mapping being read
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split(None, 5)
            if not fields:
                continue
            if not fields[0].endswith(":"):  # a mapping: range, perms, offset, dev, inode, path
                header = None
                if len(fields) == 6 and fields[5].rstrip("\n") == path:
                    start, _, end = fields[0].partition("-")
                    header = (int(start, 16), int(end, 16), "w" in fields[1])
            elif header is not None and fields[0] == "Anonymous:":
                mappings.append(_Mapping(*header, anonymous_kib=int(fields[1])))
                header = None
    return mappings


def unmap_engine_library() -> int:
    """Unmap the embedded engine's library pages from this process, once it is serving; return the
    bytes of the mappings advised (0 where there is nothing to do: no chDB loaded, not Linux).

    ClickHouse's start-up runs code all over its ~530 MiB library (every function, format and
    table engine registers itself): ~170 MiB of it stayed resident in an idle collector, and an
    ingest burst reads ~110 MiB back (docs/capacity.md, "Peak memory, the twelfth pass"). This
    lowers the process's resident *file* pages, which the kernel could reclaim anyway under
    pressure; the anonymous memory (Python's and the engine's allocations) is unchanged, and the
    pages stay in the page cache. Only mappings that cannot be written and hold no page copied on
    write are advised, so every page read again is the file's, as it was."""
    module = sys.modules.get(ENGINE_MODULE)
    path = getattr(module, "__file__", None)
    if path is None or not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        madvise = libc.madvise
        mappings = _engine_mappings(path)
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for mapping in mappings:
        if mapping.writable or mapping.anonymous_kib != 0:
            continue
        if madvise(mapping.start, mapping.end - mapping.start, MADV_DONTNEED) == 0:
            advised += mapping.end - mapping.start
        else:
            log.debug(
                "madvise refused %x-%x: errno %d", mapping.start, mapping.end, ctypes.get_errno()
            )
    return advised
