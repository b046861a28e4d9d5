"""glibc's allocator, set for a collector process: fewer arenas, and freed memory given back."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("assay.collector.allocator")

# mallopt(3) parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Arenas for the collector's Python threads (receivers, reader, writer, evaluation), instead of
# glibc's eight per core: each arena keeps the memory its thread freed for its own next
# allocations, so at the peak every thread held its own high-water mark.
ARENA_MAX = 2
# Allocations this big or bigger are mapped on their own and unmapped when freed (glibc's
# default, before it raises the threshold after the first such free): a request's payload, a
# spool segment's bytes, the insert's encoded columns. Set once, glibc no longer raises it, so
# those buffers do not stay in an arena as freed-but-kept memory between segments.
MMAP_THRESHOLD = 128 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc's (musl has none)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """For a collector process, at its start (before its threads): True when glibc took the
    settings; elsewhere (macOS, musl) nothing changes."""
    if _LIBC is None:
        return False
    taken = _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    taken = _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and taken
    if not taken:
        log.info("glibc did not take the allocator settings; memory use is unchanged")
    return taken


def release_free_memory() -> None:
    """Give the memory Python freed back to the system (glibc keeps it otherwise): after a
    segment is stored, its rows and columns are garbage."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
