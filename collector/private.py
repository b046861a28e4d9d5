"""Folders and files only the collector's own user can read: the store, the spool and the
dead-letter folder hold prompts and responses, which are no other local user's business."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
# The collector's umask: whatever it (or the embedded ClickHouse) creates is the owner's alone.
UMASK = 0o077


def private_folder(path: Path) -> Path:
    """Create `path` (and its parents) for the owner only; a folder made by an earlier version
    is narrowed to the owner too, which keeps everyone else out of what it holds."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # not ours (a shared mount): leave it be
        if path.stat().st_mode & 0o777 != FOLDER_MODE:
            path.chmod(FOLDER_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by the owner only (created so from the start, never wider)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def restrict_new_files() -> None:
    """From now on this process creates files 0600 and folders 0700 (the embedded store's files
    included, which chDB creates itself)."""
    os.umask(UMASK)
