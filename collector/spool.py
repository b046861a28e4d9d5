"""The spool: accepted requests, durable on disk (or held in memory) until the store has them.

A spool is a sequence of segments. Receivers append records to the active segment; the active
segment is sealed when it is big or old enough; the writer takes sealed segments oldest first and
releases each once the store confirmed it. A sealed segment never changes, so the writer can
derive the insert deduplication token from it: replaying it after a crash or a retry inserts
nothing twice.

The token is the segment's id: 16 random bytes drawn when the segment is created and written
into its header. A replay reads the same id back, so it carries the same token as the first
attempt; a new segment never reuses one, whatever happened to the spool folder before (drained,
deleted, copied, restored from a backup) and however many collectors share the store. Segment
numbers only order the files: they start again at 1 whenever the spool is empty.

On disk a segment is a header (`ASSG`, format version, id) and then records, each
`magic, length, crc32, signal` followed by the payload. A torn or corrupt record (a crash
mid-write, a bad sector) fails its checksum, is skipped and counted, and reading resumes at the
next record's magic. Segments of format 1 (Assay 0.x before the header; records only) are
replayed with a token made from their content; a segment of a newer format is refused at start.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from assay.collector.private import private_folder

log = logging.getLogger("assay.collector.spool")

SIGNAL_CODES = {"traces": 1, "logs": 2, "metrics": 3}
SIGNAL_NAMES = {code: name for name, code in SIGNAL_CODES.items()}
MAGIC = b"ASR1"
HEADER = struct.Struct("<4sIIB")  # magic, payload length, crc32(signal byte + payload), signal
SEGMENT_MAGIC = b"ASSG"
SEGMENT_HEADER = struct.Struct("<4sH16s")  # magic, format version, segment id
# 1: records only (no header), the format of the first releases; 2: a header with the segment id.
FORMAT_VERSION = 2
# While the disk refuses records, health checks write this much to see whether it takes a
# request's worth again.
PROBE_BYTES = 1024 * 1024
FsyncPolicy = Literal["always", "interval", "never"]
# Span ids (trace id, span id) by table (`llm_calls`, `tool_calls`): Spool.record_resent.
ResentSpans = dict[str, list[tuple[str, str]]]


class SpoolFormatError(Exception):
    """A segment file this version cannot read (written by a newer Assay): nothing is dropped,
    the collector refuses to start until the file is drained by that version or moved away."""


class SpoolFull(Exception):
    """The spool cannot take this record now (size limit or disk full); retry later. `disk`:
    the disk refused it (full, or failing), not the size limit."""

    def __init__(self, reason: str, retry_after: float = 1.0, disk: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.disk = disk


@dataclass
class Segment:
    """A sealed run of records; `token` is the same on every replay of this segment and never
    shared with another segment. `replayed`: the spool may have handed it to a writer before
    (an earlier run left it, or it is read again in this one), so the store may hold some of
    its rows already."""

    seq: int
    token: str
    records: list[tuple[str, bytes]]
    size: int
    corrupt: int = 0
    replayed: bool = field(default=False, compare=False)


@dataclass
class SpoolStats:
    appended: int = 0
    corrupt_records: int = 0
    refused_full: int = 0
    refused_disk: int = 0
    # Since when (Unix time) the disk has refused every record, and why; 0: it takes them.
    disk_failing_since: float = 0.0
    disk_error: str = ""
    segments: int = 0
    bytes: int = 0
    oldest_age_s: float = 0.0


def _write_fully(fd: int, parts: tuple[bytes, ...], size: int | None = None) -> None:
    """Write every byte of `parts` or raise the error that stopped it. The system may write
    less than asked (a disk filling up, the file-size limit): the rest is written again, so the
    error raised is the system's own (ENOSPC, EFBIG), not a guess."""
    size = sum(map(len, parts)) if size is None else size
    written = os.writev(fd, parts)
    if written == size:
        return
    rest = memoryview(b"".join(parts))[written:]  # a copy, on this rare path only
    while rest:
        n = os.write(fd, rest)
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        rest = rest[n:]


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def record_header(signal: str, payload: bytes) -> bytes:
    """What precedes `payload` in its record."""
    code = SIGNAL_CODES[signal]
    crc = zlib.crc32(payload, zlib.crc32(bytes((code,))))
    return HEADER.pack(MAGIC, len(payload), crc, code)


def encode_record(signal: str, payload: bytes) -> bytes:
    return record_header(signal, payload) + payload


def decode_records(data: bytes, offset: int = 0) -> tuple[list[tuple[str, bytes]], int]:
    """The valid records in a segment's bytes from `offset` on (past its header: a segment is
    8 MiB, which `data[offset:]` would copy once more), and how many were torn or corrupt."""
    records: list[tuple[str, bytes]] = []
    corrupt = 0
    end = len(data)
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


def new_segment_id() -> str:
    return uuid.uuid4().hex


def encode_segment_header(segment_id: str) -> bytes:
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, bytes.fromhex(segment_id))


def read_segment_header(data: bytes, name: str) -> tuple[str | None, int]:
    """The id in a segment's leading bytes and the header's length: (None, 0) for a segment of
    format 1, which has no header. Raises SpoolFormatError for a format this version cannot
    read."""
    if data[:4] != SEGMENT_MAGIC[: len(data[:4])]:
        return None, 0  # format 1: the file starts with a record
    if len(data) < SEGMENT_HEADER.size:
        # A header cut short by a crash: the segment was created but never got a record.
        return new_segment_id(), len(data)
    _, version, raw_id = SEGMENT_HEADER.unpack_from(data)
    if version > FORMAT_VERSION:
        raise SpoolFormatError(
            f"spool segment {name} has format {version}, written by a newer Assay; this "
            f"version reads formats 1 to {FORMAT_VERSION}. Run that newer version until its "
            "spool is drained, or move the file out of the spool folder to keep it aside."
        )
    return raw_id.hex(), SEGMENT_HEADER.size


def segment_token(segment_id: str | None, data: bytes) -> str:
    """The deduplication token of a segment. A format-1 segment has no id: its token is made
    from its content, so each of its replays carries the same one. (Its old token,
    `{spool.id}-{number}`, may already have been used in the store for other rows.)"""
    if segment_id is not None:
        return segment_id
    return "v1-" + hashlib.sha256(data).hexdigest()[:32]


class Spool:
    """Both spools' interface and what they share: the size limit, sealing the active segment
    when it is big or old enough, handing sealed segments to the writer oldest first, and the
    counters."""

    def __init__(self, max_bytes: int, segment_bytes: int, max_age: float) -> None:
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.max_age = max_age
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stats = SpoolStats()
        self._bytes = 0  # everything not yet released, active segment included
        self._active_size = 0
        self._opened = time.monotonic()  # when the active segment got its first record
        self._closed = False
        self._what = "spool"
        self._earlier_run_upto = 0  # segments numbered up to this were left by an earlier run
        self._handed_out: set[int] = set()  # segments given to the writer and not released
        # The spans of a segment the writer found stored by other segments, by segment token
        # (`resent_spans`).
        self._resent: dict[str, ResentSpans] = {}
        # True when `sync` makes a record more durable, so acknowledging must wait for it.
        self.syncs = False

    # Storage, for the subclasses; all are called with the lock held but `_load`.
    def _write_active(self, signal: str, payload: bytes) -> int:
        raise NotImplementedError

    def _seal_active(self) -> None:
        raise NotImplementedError

    def _sealed_count(self) -> int:
        raise NotImplementedError

    def _first_sealed_after(self, after: int) -> int | None:
        """The seq of the oldest sealed segment numbered above `after`, if any."""
        raise NotImplementedError

    def _load(self, seq: int) -> Segment:
        raise NotImplementedError

    def _forget(self, segment: Segment) -> None:
        raise NotImplementedError

    def _oldest_age(self) -> float:
        return 0.0

    # --- receivers ------------------------------------------------------------------------------
    def append(self, signal: str, payload: bytes) -> int:
        """Add a record; return a ticket for `sync`. Raises SpoolFull."""
        with self._lock:
            if self._closed:
                raise SpoolFull("the collector is shutting down", retry_after=5)
            if self._bytes + len(payload) > self.max_bytes:
                self._stats.refused_full += 1
                raise SpoolFull(
                    f"{self._what} full ({self._bytes} of {self.max_bytes} bytes waiting for "
                    "the store)",
                    retry_after=2,
                )
            if self._active_size == 0:
                # A segment's age counts from its first record; wake the writer to time it.
                self._opened = time.monotonic()
                self._changed.notify_all()
            size = self._write_active(signal, payload)
            self._stats.disk_failing_since, self._stats.disk_error = 0.0, ""
            self._active_size += size
            self._bytes += size
            self._stats.appended += 1
            ticket = self._stats.appended
            if self._due():
                self._seal_locked()
            return ticket

    def sync(self, ticket: int) -> None:
        """Return once the record behind `ticket` is as durable as the policy promises."""

    # --- the writer -----------------------------------------------------------------------------
    def record_resent(self, segment: Segment, spans: ResentSpans) -> None:
        """Keep, until `segment` is released and across a crash, the spans of its calls and tool
        calls the store held before its first insert (a client sent them again: they are left
        out, collector/resent.py). A replay must leave out the same ones: its insert then
        carries the same rows as the first attempt's, so a view that attempt did not reach
        takes the rows it would have taken, and a row that attempt stored is not taken for a
        copy. Returns once the record is as durable as the segment."""
        with self._lock:
            self._resent[segment.token] = spans
        self._keep_resent(segment, spans)

    def resent_spans(self, segment: Segment) -> ResentSpans | None:
        """What `record_resent` kept for `segment`; None: no insert of its calls was tried (or
        the disk refused the record, which was logged)."""
        with self._lock:
            spans = self._resent.get(segment.token)
        return spans if spans is not None else self._kept_resent(segment)

    def _keep_resent(self, segment: Segment, spans: ResentSpans) -> None:
        pass

    def _kept_resent(self, segment: Segment) -> ResentSpans | None:
        return None

    def _due(self) -> bool:
        size = self._active_size
        return size >= self.segment_bytes or (
            size > 0 and time.monotonic() - self._opened >= self.max_age
        )

    def _seal_locked(self) -> None:
        if self._active_size:
            self._seal_active()
            self._active_size = 0
            self._changed.notify_all()

    def next_segment(self, timeout: float, after: int = 0) -> Segment | None:
        """The oldest sealed segment numbered above `after` (every one by default: segments
        stay until released), sealing the active one when it is due; None on timeout. The
        writer reads the next segment while it stores the one before (`after` its seq)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (seq := self._first_sealed_after(after)) is None:
                if self._due():
                    self._seal_locked()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                if self._active_size:  # sleep until the active segment comes due
                    remaining = min(
                        remaining, max(self.max_age - (time.monotonic() - self._opened), 0.001)
                    )
                self._changed.wait(remaining)
        segment = self._load(seq)
        with self._lock:  # a copy: the memory spool hands out the segment it holds
            replayed = seq <= self._earlier_run_upto or seq in self._handed_out
            segment = replace(segment, replayed=replayed)
            self._handed_out.add(seq)
        if segment.corrupt:
            log.warning(
                "spool: segment %d has %d torn or corrupt record(s), skipped",
                segment.seq,
                segment.corrupt,
            )
            with self._lock:
                self._stats.corrupt_records += segment.corrupt
        return segment

    def replaying(self) -> bool:
        """Whether a segment an earlier run left is still to be stored (collector/older_spans.py
        waits for those: their spans may be stored already, or not)."""
        with self._lock:
            first = self._first_sealed_after(0)
            return first is not None and first <= self._earlier_run_upto

    def release(self, segment: Segment) -> None:
        """The store has everything in `segment`: forget it."""
        with self._lock:
            self._bytes -= segment.size
            self._handed_out.discard(segment.seq)
            self._resent.pop(segment.token, None)
            self._forget(segment)

    def stats(self) -> SpoolStats:
        with self._lock:
            stats = SpoolStats(**vars(self._stats))
            stats.segments = self._sealed_count() + (1 if self._active_size else 0)
            stats.bytes = self._bytes
            stats.oldest_age_s = self._oldest_age()
            return stats

    def probe_disk(self) -> None:
        """While the disk refuses records, see whether it takes a write again: a collector
        that a load balancer took out of service gets no request to find out by."""

    def seal(self) -> None:
        """Seal the active segment now (shutdown, tests)."""
        with self._lock:
            self._seal_locked()

    def close(self) -> None:
        """Refuse new records and seal the active segment; the writer drains what is sealed."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._seal_locked()
                self._close_storage()
                self._changed.notify_all()

    def _close_storage(self) -> None:
        pass


class DiskSpool(Spool):
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
        super().__init__(max_bytes, segment_bytes, max_age)
        self.folder = Path(folder)
        private_folder(self.folder)
        self.fsync = fsync
        self.syncs = fsync == "always"
        self._sync_lock = threading.Lock()
        self._synced = 0  # tickets known durable
        # Ticket ranges (after, upto] an fsync failed for: their data may never reach the disk,
        # and a later fsync that succeeds says nothing about them (the kernel forgets the error).
        self._lost: deque[tuple[int, int]] = deque(maxlen=256)
        self._next_probe = 0.0  # probe_disk: at most one probe write a second
        # Every segment file left by an earlier run is sealed, and replayed first. Their headers
        # are read now, so a segment this version cannot read stops the start, not the writer.
        self._sealed: deque[tuple[int, float]] = deque()
        legacy = 0
        for path in self.folder.glob("*.resent"):  # a crash between releasing and forgetting
            if not path.with_suffix(".seg").exists():
                path.unlink(missing_ok=True)
        for path in sorted(self.folder.glob("*.seg")):
            stat = path.stat()
            with path.open("rb") as file:
                segment_id, header = read_segment_header(file.read(SEGMENT_HEADER.size), path.name)
            legacy += segment_id is None
            self._sealed.append((int(path.stem), stat.st_mtime))
            self._bytes += stat.st_size - header
        if self._sealed:
            log.info(
                "spool: replaying %d segment(s), %d bytes, left by an earlier run%s",
                len(self._sealed),
                self._bytes,
                f" ({legacy} of them in spool format 1, from an earlier release)" if legacy else "",
            )
        self._seq = self._sealed[-1][0] + 1 if self._sealed else 1
        self._earlier_run_upto = self._seq - 1
        self._fd: int | None = None
        try:
            self._fd = self._open(self._seq)
        except OSError as exc:  # a full disk: start all the same, and drain what is spooled
            reason = f"cannot create a spool segment: {_why(exc)}"
            log.warning("spool: %s; requests are refused until the disk takes records", reason)
            self._disk_failing(reason)
        if fsync == "interval":
            threading.Thread(
                target=self._sync_every,
                args=(fsync_interval,),
                name="assay-spool-fsync",
                daemon=True,
            ).start()

    def _path(self, seq: int) -> Path:
        return self.folder / f"{seq:012d}.seg"

    def _resent_path(self, seq: int) -> Path:
        return self.folder / f"{seq:012d}.resent"

    def _keep_resent(self, segment: Segment, spans: ResentSpans) -> None:
        """A file beside the segment, named by its number and holding its token (segment
        numbers start again at 1 when the spool is empty). Written whole under a temporary
        name, then renamed: a file there is complete. A disk that refuses it must not stop the
        writer (which frees the spool's disk): the segment is stored all the same, and only
        its replay after a crash would look its calls up again."""
        try:
            self._write_resent(segment, spans)
        except OSError as exc:
            log.warning(
                "spool: could not record the resent spans of segment %d: %s", segment.seq, exc
            )

    def _write_resent(self, segment: Segment, spans: ResentSpans) -> None:
        path = self._resent_path(segment.seq)
        partial = path.with_suffix(".resent-partial")
        record = json.dumps({"token": segment.token, "spans": spans}).encode()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_fully(fd, (record,))
            if self.fsync != "never":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        if self.fsync != "never":
            self._sync_folder()

    def _sync_folder(self) -> None:
        """Make the folder's names (a file created or renamed) survive a power cut."""
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _kept_resent(self, segment: Segment) -> ResentSpans | None:
        path = self._resent_path(segment.seq)
        try:
            record = json.loads(path.read_bytes())
            if record.get("token") != segment.token:
                return None  # left by another segment of the same number, released since
            return {table: [(t, s) for t, s in spans] for table, spans in record["spans"].items()}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # A record the disk damaged must not stop the writer on this segment at every
            # start: its calls are looked up again, as a segment without a record's are.
            log.warning("spool: the record of resent spans %s is unreadable: %s", path.name, exc)
            return None

    def _open(self, seq: int) -> int:
        """Create segment `seq` with its header: a fresh id, drawn here and never again."""
        fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        header = encode_segment_header(new_segment_id())
        try:
            _write_fully(fd, (header,))
            if self.fsync != "never":
                self._sync_folder()  # the new file's name, as well as its records
        except OSError:
            os.close(fd)
            self._path(seq).unlink(missing_ok=True)
            raise
        return fd

    def _write_active(self, signal: str, payload: bytes) -> int:
        # The header and the payload in one write, without joining them first: a request is up
        # to 4 MiB (and each copy of it a fresh mapping of that size, page-faulted in).
        header = record_header(signal, payload)
        size = len(header) + len(payload)
        try:
            if self._fd is None:  # creating it failed when the last one was sealed (disk full)
                self._fd = self._open(self._seq)
            fd = self._fd
        except OSError as exc:
            raise self._refused_by_disk(f"cannot create a spool segment: {_why(exc)}") from exc
        try:
            _write_fully(fd, (header, payload), size)
        except OSError as exc:
            # Cut the partial record off, so the segment stays a header and whole records.
            try:
                os.ftruncate(fd, SEGMENT_HEADER.size + self._active_size)
            except OSError:
                log.exception("spool: could not cut off a partial record; it will be skipped")
            raise self._refused_by_disk(f"cannot write to the spool: {_why(exc)}") from exc
        return size

    def probe_disk(self) -> None:
        with self._lock:
            if not self._stats.disk_failing_since or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + 1.0
        probe = self.folder / "disk-probe.tmp"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_fully(fd, (bytes(PROBE_BYTES),))
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            with self._lock:
                self._stats.disk_error = f"a {PROBE_BYTES} B probe write: {_why(exc)}"
            return
        with self._lock:
            self._stats.disk_failing_since, self._stats.disk_error = 0.0, ""

    def _refused_by_disk(self, reason: str) -> SpoolFull:
        """Count a record the disk refused (under the lock) and say so to the sender."""
        self._stats.refused_disk += 1
        self._disk_failing(reason)
        return SpoolFull(reason, retry_after=5, disk=True)

    def _disk_failing(self, reason: str) -> None:
        if not self._stats.disk_failing_since:
            self._stats.disk_failing_since = time.time()
        self._stats.disk_error = reason

    def sync(self, ticket: int) -> None:
        """Raises SpoolFull when the record may not be on disk (an fsync failed): the request
        must not be acknowledged. The record stays in its segment and may still be stored."""
        if not self.syncs:
            return
        # Group commit: whoever takes the lock first fsyncs for everyone written so far.
        with self._sync_lock:
            if not self._lost_ticket(ticket) and self._synced >= ticket:
                return
            with self._lock:
                fd, upto = self._fd, self._stats.appended
            if fd is not None and not self._lost_ticket(ticket):
                try:
                    os.fsync(fd)
                except OSError as exc:
                    if exc.errno != errno.EBADF:  # EBADF: sealed (so fsynced) and closed meanwhile
                        with self._lock:
                            self._lose(upto, exc)
                else:
                    self._synced = max(self._synced, upto)
            if self._lost_ticket(ticket):  # here, or when its segment was sealed meanwhile
                with self._lock:
                    raise self._refused_by_disk(
                        "the spool could not be made durable (fsync failed)"
                    )

    def _lost_ticket(self, ticket: int) -> bool:
        return any(after < ticket <= upto for after, upto in tuple(self._lost))

    def _lose(self, upto: int, exc: OSError) -> None:
        """An fsync failed: records after the last durable one, up to `upto`, are refused."""
        log.error("spool: fsync failed, %d request(s) refused: %s", upto - self._synced, exc)
        self._lost.append((self._synced, upto))

    def _sync_every(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            with self._lock:
                if self._closed:
                    return
                if self._fd is not None:
                    try:
                        os.fsync(self._fd)
                    except OSError as exc:  # `interval` acknowledges before fsync: say so, go on
                        log.error("spool: fsync failed: %s", exc)

    def _seal_active(self) -> None:
        if self._fd is not None:  # always, as the active segment has records
            try:
                if self.fsync != "never":
                    os.fsync(self._fd)
            except OSError as exc:  # sealed all the same; its unsynced records are refused
                self._lose(self._stats.appended, exc)
            else:
                self._synced = self._stats.appended
            os.close(self._fd)
        self._sealed.append((self._seq, time.time()))
        self._seq += 1
        try:
            self._fd = self._open(self._seq)
        except OSError as exc:  # the next record tries again, and is refused if it fails too
            log.warning("spool: cannot create the next segment yet: %s", exc)
            self._fd = None

    def _sealed_count(self) -> int:
        return len(self._sealed)

    def _first_sealed_after(self, after: int) -> int | None:
        return next((seq for seq, _ in self._sealed if seq > after), None)

    def _load(self, seq: int) -> Segment:
        data = self._path(seq).read_bytes()
        segment_id, header = read_segment_header(data, self._path(seq).name)
        records, corrupt = decode_records(data, header)
        token = segment_token(segment_id, data)
        return Segment(seq, token, records, len(data) - header, corrupt)

    def _forget(self, segment: Segment) -> None:
        if self._sealed and self._sealed[0][0] == segment.seq:
            self._sealed.popleft()
        # The record first: a crash in between leaves the segment, replayed and looked up again
        # (harmless: the store has all of it, so its tokens drop whatever is found missing),
        # rather than a record that outlives its segment until the next start.
        self._resent_path(segment.seq).unlink(missing_ok=True)
        self._path(segment.seq).unlink(missing_ok=True)

    def _oldest_age(self) -> float:
        return round(time.time() - self._sealed[0][1], 3) if self._sealed else 0.0

    def _close_storage(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._path(self._seq).unlink(missing_ok=True)  # the fresh, empty active segment


class MemorySpool(Spool):
    """Records held in memory only: faster, but what is not yet stored dies with the process."""

    def __init__(
        self, max_bytes: int, segment_bytes: int = 8 * 1024 * 1024, max_age: float = 0.5
    ) -> None:
        super().__init__(max_bytes, segment_bytes, max_age)
        self._what = "queue"
        self._active: list[tuple[str, bytes]] = []
        self._sealed: deque[Segment] = deque()
        self._seq = 1

    def _write_active(self, signal: str, payload: bytes) -> int:
        self._active.append((signal, payload))
        return len(payload)

    def _seal_active(self) -> None:
        self._sealed.append(Segment(self._seq, new_segment_id(), self._active, self._active_size))
        self._seq += 1
        self._active = []

    def _sealed_count(self) -> int:
        return len(self._sealed)

    def _first_sealed_after(self, after: int) -> int | None:
        return next((segment.seq for segment in self._sealed if segment.seq > after), None)

    def _load(self, seq: int) -> Segment:
        with self._lock:
            return next(segment for segment in self._sealed if segment.seq == seq)

    def _forget(self, segment: Segment) -> None:
        if self._sealed and self._sealed[0].seq == segment.seq:
            self._sealed.popleft()
