"""The dead-letter folder: rows the store refused for their values, kept aside to inspect and retry.

The writer stores what it can of a batch and moves the rows the store refused (a data error, not
an outage: see store/base.py `DataError`) here, so one bad value never holds up what comes after
it. Each entry is one JSON file, one per spool segment and table, named so that a segment
replayed after a crash writes the same entry again rather than a second one:

    {"id", "table", "error", "created", "attempts", "columns": [...], "rows": [[...], ...]}

The rows are the values exactly as the writer tried to insert them (`columns` names them), so an
entry can be read, fixed by hand if need be, and retried. `assay deadletter retry` renames an
entry to `<id>.retry`; the collector's writer takes those up (at once, or at its next start),
inserts them as it inserts a batch, and writes back only what the store refuses again. A writer
takes an entry by renaming it to `<id>.retrying` (its own while it inserts: a person's retry of
the entry written back meanwhile renames `<id>.json` and cannot touch it); one left by a
collector that stopped mid-way is asked for again at the next start.

The folder is bounded (`max_deadletter_bytes`): when an entry would not fit, the writer keeps the
batch in the spool and retries it, as during an outage, rather than lose it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.collector.private import private_folder, write_private

ENTRY = ".json"
RETRY = ".retry"
RETRYING = ".retrying"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class DeadLetterFull(Exception):
    """The folder has no room for this entry: the batch stays in the spool."""


@dataclass(frozen=True)
class Entry:
    id: str
    table: str
    error: str
    created: float  # seconds since the epoch
    attempts: int
    columns: list[str]
    rows: list[list[Any]]
    waiting_retry: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "table": self.table,
            "rows": len(self.rows),
            "attempts": self.attempts,
            "created": self.created,
            "state": "retry requested" if self.waiting_retry else "dead-lettered",
            "error": self.error,
        }


@dataclass(frozen=True)
class DeadLetterStats:
    entries: int  # waiting for a person (and retries asked for, not done yet)
    bytes: int


def _encode(entry: Entry) -> bytes:
    # NaN and ±Infinity are kept as JSON's common extension; lone surrogates are escaped.
    body = {
        "id": entry.id,
        "table": entry.table,
        "error": entry.error,
        "created": entry.created,
        "attempts": entry.attempts,
        "columns": entry.columns,
        "rows": entry.rows,
    }
    return json.dumps(body, ensure_ascii=True).encode()


class DeadLetter:
    """One folder of entries (created 0700, files 0600)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        private_folder(self.folder)
        self._recover()

    def _recover(self) -> None:
        """Retries a collector stopped in the middle of: asked for again, unless the entry was
        written back (refused again) before it stopped."""
        for path in self.folder.glob(f"*{RETRYING}"):
            entry_id = path.name.removesuffix(RETRYING)
            if self._path(entry_id, ENTRY).exists() or self._path(entry_id, RETRY).exists():
                path.unlink(missing_ok=True)
            else:
                os.rename(path, self._path(entry_id, RETRY))
        self._sync_folder()

    # --- the writer ---------------------------------------------------------------------------
    def add(
        self,
        entry_id: str,
        table: str,
        columns: Sequence[str],
        rows: list[list[Any]],
        error: str,
        attempts: int = 1,
    ) -> Entry:
        """Write an entry durably (replacing one of the same id). Raises DeadLetterFull."""
        entry = Entry(entry_id, table, error[:2000], time.time(), attempts, list(columns), rows)
        data = _encode(entry)
        path = self._path(entry_id, ENTRY)
        existing = path.stat().st_size if path.exists() else 0
        if self.stats().bytes - existing + len(data) > self.max_bytes:
            raise DeadLetterFull(
                f"dead-letter folder {self.folder} full: {len(data)} more bytes would pass "
                f"max_deadletter_bytes ({self.max_bytes}); inspect it with `assay deadletter list`"
            )
        partial = path.with_suffix(".partial")
        write_private(partial, data)
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, path)
        self._sync_folder()
        return entry

    def retries(self) -> list[str]:
        """Ids of the entries someone asked to retry, oldest first."""
        paths = sorted(self.folder.glob(f"*{RETRY}"), key=lambda p: p.stat().st_mtime)
        return [p.name.removesuffix(RETRY) for p in paths]

    def take_retry(self, entry_id: str) -> Entry | None:
        """The entry waiting for a retry, now this writer's until `retried` or `retry_later`;
        None when another worker took it first."""
        taken = self._path(entry_id, RETRYING)
        try:
            os.rename(self._path(entry_id, RETRY), taken)
        except FileNotFoundError:
            return None
        return self._read(taken, waiting_retry=True)

    def retried(self, entry_id: str) -> None:
        """The retry is over: what the store refused again was written back with `add`."""
        self._path(entry_id, RETRYING).unlink(missing_ok=True)
        self._sync_folder()

    def retry_later(self, entry_id: str) -> None:
        """The retry could not be done now (the store is down): asked for again."""
        os.rename(self._path(entry_id, RETRYING), self._path(entry_id, RETRY))

    # --- people (assay deadletter) ------------------------------------------------------------
    def entries(self) -> list[Entry]:
        found = []
        for path in sorted(self.folder.iterdir(), key=lambda p: p.name):
            if path.suffix in (ENTRY, RETRY, RETRYING):
                try:
                    found.append(self._read(path, waiting_retry=path.suffix != ENTRY))
                except (OSError, ValueError):
                    continue  # gone meanwhile, or not ours
        return sorted(found, key=lambda e: e.created)

    def get(self, entry_id: str) -> Entry:
        """Raises KeyError for an unknown id."""
        for suffix in (ENTRY, RETRY, RETRYING):
            path = self._path(entry_id, suffix)
            if path.exists():
                return self._read(path, waiting_retry=suffix != ENTRY)
        raise KeyError(entry_id)

    def request_retry(self, entry_id: str) -> bool:
        """Ask the collector to insert the entry again; False when it is already asked for."""
        try:
            os.rename(self._path(entry_id, ENTRY), self._path(entry_id, RETRY))
        except FileNotFoundError:
            if self._path(entry_id, RETRY).exists() or self._path(entry_id, RETRYING).exists():
                return False
            raise KeyError(entry_id) from None
        self._sync_folder()
        return True

    def stats(self) -> DeadLetterStats:
        entries = size = 0
        with os.scandir(self.folder) as found:
            for item in found:
                if item.name.endswith((ENTRY, RETRY, RETRYING)):
                    try:
                        size += item.stat().st_size
                    except FileNotFoundError:
                        continue
                    entries += 1
        return DeadLetterStats(entries, size)

    # --- files --------------------------------------------------------------------------------
    def _path(self, entry_id: str, suffix: str) -> Path:
        if not _ID.match(entry_id):
            raise KeyError(entry_id)
        return self.folder / f"{entry_id}{suffix}"

    def _read(self, path: Path, waiting_retry: bool) -> Entry:
        body = json.loads(path.read_bytes())
        return Entry(
            id=str(body["id"]),
            table=str(body["table"]),
            error=str(body.get("error", "")),
            created=float(body.get("created", 0.0)),
            attempts=int(body.get("attempts", 1)),
            columns=list(body["columns"]),
            rows=list(body["rows"]),
            waiting_retry=waiting_retry,
        )

    def _sync_folder(self) -> None:
        descriptor = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
