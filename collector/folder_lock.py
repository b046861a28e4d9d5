"""One process per spool folder: an exclusive lock held on the folder while a collector runs."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from assay.collector.private import private_folder

log = logging.getLogger("assay.collector")


class FolderInUse(OSError):
    """Another process holds the folder's lock."""


class FolderLock:
    """A lock on the folder itself (no lock file beside the segments): the kernel drops it when
    the process ends, `kill -9` included, so a crashed collector never leaves it behind."""

    def __init__(self, folder: Path, what: str, setting: str) -> None:
        self.folder = private_folder(Path(folder))
        self._fd: int | None = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            # Two collectors on one spool would each replay (and delete) the segments the other
            # is writing, and create segment files under the same names: acknowledged data lost.
            raise FolderInUse(
                f"the {what} folder {self.folder} is in use by another collector; give each "
                f"collector its own ({setting})"
            ) from None
        except OSError as exc:  # a file system without locks (some NFS): run, but say so
            log.warning(
                "cannot lock the %s folder %s (%s): one collector per folder", what, folder, exc
            )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
