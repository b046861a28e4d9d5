"""The allocators set for a collector process: glibc's (Python's memory) with fewer arenas and
freed memory given back, and the embedded engine's own (jemalloc) returning its large blocks."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
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

# The embedded engine (chDB) has its own jemalloc, read from this variable when chDB's library
# is loaded. jemalloc keeps what a thread freed resident for up to `dirty_decay_ms` (chDB sets 5 s)
# in that thread's per-CPU arena, so an insert's or a merge's blocks, freed, stayed resident
# while the next merge took fresh ones: ~130 MiB of the collector's peak RSS under
# bench/ingest.py. Blocks over `oversize_threshold` (chDB sets 64 MiB) come from jemalloc's
# arena for large blocks, which gives them back as soon as they are freed: at 256 KiB, the
# columns and blocks of inserts and merges go there, the small allocations keep their arenas.
# Each such block then comes as fresh pages again, which costs the ingest 10-13 % more CPU per
# span on the quiet machine: set only for `engine_memory: lean`.
ENGINE_MALLOC_VARIABLE = "JE_MALLOC_CONF"
ENGINE_MALLOC_CONF = "oversize_threshold:262144"


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


def tune_allocator(lean_engine: bool = False) -> bool:
    """For a collector process, at its start (before its threads and before the embedded engine
    is loaded): True when glibc took the settings; elsewhere (macOS, musl) glibc's stay as they
    are. With `lean_engine` the engine's are set wherever it runs, unless the environment sets
    them already."""
    if lean_engine:
        _tune_engine_allocator()
    if _LIBC is None:
        return False
    taken = _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    taken = _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and taken
    if not taken:
        log.info("glibc did not take the allocator settings; memory use is unchanged")
    return taken


def _tune_engine_allocator() -> None:
    if ENGINE_MALLOC_VARIABLE in os.environ:  # the operator's own choice
        return
    if "chdb" in sys.modules:  # jemalloc read its settings when the library was loaded
        log.info("the embedded engine is loaded already; its allocator settings are unchanged")
        return
    os.environ[ENGINE_MALLOC_VARIABLE] = ENGINE_MALLOC_CONF


def release_free_memory() -> None:
    """Give the memory Python freed back to the system (glibc keeps it otherwise): after a
    segment is stored, its rows and columns are garbage."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
