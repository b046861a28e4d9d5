"""The spool: accepted requests, durable on disk (or held in memory) until the store has them.

A spool is a sequence of segments. Receivers append records to the active segment; the active
segment is sealed when it is big or old enough; the writer takes sealed segments oldest first and
releases each once the store confirmed it. A sealed segment never changes, so the writer can
derive the insert deduplication token from its name: replaying it after a crash or a retry
inserts nothing twice.

On disk a record is `magic, length, crc32, signal` followed by the payload. A torn or corrupt
record (a crash mid-write, a bad sector) fails its checksum, is skipped and counted, and reading
resumes at the next record's magic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger("assay.collector.spool")

SIGNAL_CODES = {"traces": 1, "logs": 2}
SIGNAL_NAMES = {code: name for name, code in SIGNAL_CODES.items()}
MAGIC = b"ASR1"
HEADER = struct.Struct("<4sIIB")  # magic, payload length, crc32(signal byte + payload), signal
FsyncPolicy = Literal["always", "interval", "never"]


class SpoolFull(Exception):
    """The spool cannot take this record now (size limit or disk full); retry later."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class Segment:
    """A sealed run of records; `token` is stable across restarts and unique per spool."""

    seq: int
    token: str
    records: list[tuple[str, bytes]]
    size: int
    corrupt: int = 0


@dataclass
class SpoolStats:
    appended: int = 0
    corrupt_records: int = 0
    refused_full: int = 0
    refused_disk: int = 0
    segments: int = 0
    bytes: int = 0
    oldest_age_s: float = 0.0


class Spool(Protocol):
    def append(self, signal: str, payload: bytes) -> int:
        """Add a record; return a ticket for `sync`. Raises SpoolFull."""

    def sync(self, ticket: int) -> None:
        """Return once the record behind `ticket` is as durable as the policy promises."""

    def next_segment(self, timeout: float) -> Segment | None:
        """The oldest sealed segment, sealing the active one when it is due; None on timeout."""

    def release(self, segment: Segment) -> None:
        """The store has everything in `segment`: forget it."""

    def stats(self) -> SpoolStats: ...

    def close(self) -> None: ...


def encode_record(signal: str, payload: bytes) -> bytes:
    code = SIGNAL_CODES[signal]
    crc = zlib.crc32(payload, zlib.crc32(bytes((code,))))
    return HEADER.pack(MAGIC, len(payload), crc, code) + payload


def decode_records(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The valid records in a segment's bytes, and how many were torn or corrupt."""
    records: list[tuple[str, bytes]] = []
    corrupt = 0
    offset, end = 0, len(data)
    while offset < end:
        if data[offset : offset + 4] != MAGIC or offset + HEADER.size > end:
            corrupt += 1
            offset = _next_magic(data, offset + 1)
            continue
        _, length, crc, code = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if (
            len(payload) == length
            and code in SIGNAL_NAMES
            and zlib.crc32(payload, zlib.crc32(bytes((code,)))) == crc
        ):
            records.append((SIGNAL_NAMES[code], payload))
            offset = start + length
        else:
            corrupt += 1
            offset = _next_magic(data, offset + 1)
    return records, corrupt


def _next_magic(data: bytes, start: int) -> int:
    found = data.find(MAGIC, start)
    return len(data) if found < 0 else found


class _Sealing:
    """When the active segment is due to be sealed: big enough, or old enough."""

    def __init__(self, segment_bytes: int, max_age: float) -> None:
        self.segment_bytes = segment_bytes
        self.max_age = max_age

    def due(self, size: int, opened: float) -> bool:
        return size >= self.segment_bytes or (
            size > 0 and time.monotonic() - opened >= self.max_age
        )

    def wait_time(self, size: int, opened: float, remaining: float) -> float:
        """How long the writer may sleep: until the active segment is due, at most `remaining`."""
        if size == 0:
            return remaining
        return min(remaining, max(self.max_age - (time.monotonic() - opened), 0.001))


class DiskSpool:
    """Segment files in a folder; survives crashes and restarts."""

    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        segment_bytes: int = 8 * 1024 * 1024,
        max_age: float = 0.5,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 0.05,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._sealing = _Sealing(segment_bytes, max_age)
        self._lock = threading.Lock()
        self._sealed_ready = threading.Condition(self._lock)
        self._sync_lock = threading.Lock()
        self._stats = SpoolStats()
        self.instance = self._instance_id()
        # Sealed segments: every file left by an earlier run is replayed first.
        self._sealed: deque[tuple[int, float]] = deque()
        self._bytes = 0
        for path in sorted(self.folder.glob("*.seg")):
            self._sealed.append((int(path.stem), path.stat().st_mtime))
            self._bytes += path.stat().st_size
        if self._sealed:
            log.info(
                "spool: replaying %d segment(s), %d bytes, left by an earlier run",
                len(self._sealed),
                self._bytes,
            )
        self._seq = self._sealed[-1][0] + 1 if self._sealed else 1
        self._fd = -1
        self._active_size = 0
        self._opened = time.monotonic()
        self._written = 0  # tickets handed out
        self._synced = 0  # tickets known durable
        self._open_active()
        self._closed = False
        self._syncer: threading.Thread | None = None
        if fsync == "interval":
            self._syncer = threading.Thread(
                target=self._sync_every,
                args=(fsync_interval,),
                name="assay-spool-fsync",
                daemon=True,
            )
            self._syncer.start()

    def _instance_id(self) -> str:
        # Dedup tokens must not collide between collectors writing to one ClickHouse.
        path = self.folder / "spool.id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            instance = uuid.uuid4().hex
            path.write_text(instance)
            return instance

    def _path(self, seq: int) -> Path:
        return self.folder / f"{seq:012d}.seg"

    def _open_active(self) -> None:
        self._fd = os.open(self._path(self._seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active_size = 0
        self._opened = time.monotonic()

    # --- receivers ------------------------------------------------------------------------------
    def append(self, signal: str, payload: bytes) -> int:
        record = encode_record(signal, payload)
        with self._lock:
            if self._closed:
                raise SpoolFull("the collector is shutting down", retry_after=5)
            if self._bytes + len(record) > self.max_bytes:
                self._stats.refused_full += 1
                raise SpoolFull(
                    f"spool full ({self._bytes} of {self.max_bytes} bytes waiting for the store)",
                    retry_after=2,
                )
            try:
                written = os.write(self._fd, record)
                if written != len(record):
                    raise OSError(28, "short write")
            except OSError as exc:
                # Cut the partial record off, so the segment stays a run of whole records.
                self._truncate_active()
                self._stats.refused_disk += 1
                raise SpoolFull(
                    f"cannot write to the spool: {exc.strerror or exc}", retry_after=5
                ) from exc
            if self._active_size == 0:
                # A segment's age counts from its first record; wake the writer to time it.
                self._opened = time.monotonic()
                self._sealed_ready.notify_all()
            self._active_size += len(record)
            self._bytes += len(record)
            self._stats.appended += 1
            self._written += 1
            ticket = self._written
            if self._sealing.due(self._active_size, self._opened):
                self._seal_locked()
            return ticket

    def _truncate_active(self) -> None:
        try:
            os.ftruncate(self._fd, self._active_size)
        except OSError:
            log.exception("spool: could not truncate a partial record; it will be skipped")

    def sync(self, ticket: int) -> None:
        if self.fsync != "always":
            return
        # Group commit: whoever takes the lock first fsyncs for everyone written so far.
        with self._sync_lock:
            if self._synced >= ticket:
                return
            with self._lock:
                fd, upto = self._fd, self._written
            with contextlib.suppress(OSError):  # sealed (so fsynced) and closed meanwhile
                os.fsync(fd)
            self._synced = max(self._synced, upto)

    def _sync_every(self, interval: float) -> None:
        while not self._closed:
            time.sleep(interval)
            with self._lock:
                if self._closed:
                    return
                os.fsync(self._fd)

    def _seal_locked(self) -> None:
        if self._active_size == 0:
            return
        if self.fsync != "never":
            os.fsync(self._fd)
        os.close(self._fd)
        self._synced = self._written
        self._sealed.append((self._seq, time.time()))
        self._sealed_ready.notify_all()
        self._seq += 1
        self._open_active()

    # --- the writer -------------------------------------------------------------------------------
    def next_segment(self, timeout: float) -> Segment | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._sealed:
                if self._sealing.due(self._active_size, self._opened):
                    self._seal_locked()
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._sealed_ready.wait(
                    self._sealing.wait_time(self._active_size, self._opened, remaining)
                )
            seq = self._sealed[0][0]
        data = self._path(seq).read_bytes()
        records, corrupt = decode_records(data)
        if corrupt:
            log.warning("spool: segment %d has %d torn or corrupt record(s), skipped", seq, corrupt)
            with self._lock:
                self._stats.corrupt_records += corrupt
        return Segment(seq, f"{self.instance}-{seq}", records, len(data), corrupt)

    def release(self, segment: Segment) -> None:
        with self._lock:
            if self._sealed and self._sealed[0][0] == segment.seq:
                self._sealed.popleft()
            self._bytes -= segment.size
        self._path(segment.seq).unlink(missing_ok=True)

    def stats(self) -> SpoolStats:
        with self._lock:
            stats = SpoolStats(**vars(self._stats))
            stats.segments = len(self._sealed) + (1 if self._active_size else 0)
            stats.bytes = self._bytes
            stats.oldest_age_s = round(time.time() - self._sealed[0][1], 3) if self._sealed else 0.0
            return stats

    def seal(self) -> None:
        """Seal the active segment now (shutdown, tests)."""
        with self._lock:
            self._seal_locked()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._active_size:
                self._seal_locked()
            os.close(self._fd)
            if self._active_size == 0:
                self._path(self._seq).unlink(missing_ok=True)
            self._sealed_ready.notify_all()


@dataclass
class MemorySpool:
    """Records held in memory only: faster, but what is not yet stored dies with the process."""

    max_bytes: int
    segment_bytes: int = 8 * 1024 * 1024
    max_age: float = 0.5
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self._sealing = _Sealing(self.segment_bytes, self.max_age)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._active: list[tuple[str, bytes]] = []
        self._active_size = 0
        self._opened = time.monotonic()
        self._sealed: deque[Segment] = deque()
        self._bytes = 0
        self._seq = 1
        self._stats = SpoolStats()
        self._closed = False

    def append(self, signal: str, payload: bytes) -> int:
        with self._lock:
            if self._closed:
                raise SpoolFull("the collector is shutting down", retry_after=5)
            if self._bytes + len(payload) > self.max_bytes:
                self._stats.refused_full += 1
                raise SpoolFull(
                    f"queue full ({self._bytes} of {self.max_bytes} bytes waiting for the store)",
                    retry_after=2,
                )
            if not self._active:
                self._opened = time.monotonic()
                self._ready.notify_all()
            self._active.append((signal, payload))
            self._active_size += len(payload)
            self._bytes += len(payload)
            self._stats.appended += 1
            if self._sealing.due(self._active_size, self._opened):
                self._seal_locked()
            return 0

    def sync(self, ticket: int) -> None:
        return None

    def _seal_locked(self) -> None:
        if not self._active:
            return
        self._sealed.append(
            Segment(self._seq, f"{self.instance}-{self._seq}", self._active, self._active_size)
        )
        self._seq += 1
        self._active, self._active_size = [], 0
        self._ready.notify_all()

    def next_segment(self, timeout: float) -> Segment | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._sealed:
                if self._sealing.due(self._active_size, self._opened):
                    self._seal_locked()
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._ready.wait(
                    self._sealing.wait_time(self._active_size, self._opened, remaining)
                )
            return self._sealed[0]

    def release(self, segment: Segment) -> None:
        with self._lock:
            if self._sealed and self._sealed[0] is segment:
                self._sealed.popleft()
            self._bytes -= segment.size

    def stats(self) -> SpoolStats:
        with self._lock:
            stats = SpoolStats(**vars(self._stats))
            stats.segments = len(self._sealed) + (1 if self._active else 0)
            stats.bytes = self._bytes
            return stats

    def seal(self) -> None:
        with self._lock:
            self._seal_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._seal_locked()
            self._ready.notify_all()
