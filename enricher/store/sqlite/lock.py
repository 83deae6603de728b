"""Leadership for the SQLite backend: an exclusive ``fcntl.flock`` on a file next to the database,
which the kernel drops when the holding process dies, so another process takes over. While the process
lives the kernel keeps the lock, but a lock file removed or replaced lets another process lock a new
one: ``confirm``, which every act of leadership calls first, notices that as the lock lost."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class FileLock:
    """An exclusive lock on PATH, taken without waiting."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock, as far as it knows (``confirm`` looks at the file)."""
        return self._file is not None

    def confirm(self) -> bool:
        """Whether this object still holds the lock: the file it locked is still the one at PATH. A lock
        on a file since removed or replaced locks out nobody: it is let go here."""
        if self._file is None:
            return False
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            found = None
        locked = os.fstat(self._file.fileno())
        if found is not None and (found.st_dev, found.st_ino) == (locked.st_dev, locked.st_ino):
            return True
        log.warning("lost the leadership lock %s: the file was removed or replaced", self.path)
        self.release()
        return False

    def acquire(self) -> bool:
        """Take the lock without waiting, or confirm it is still held; return whether this object holds it now."""
        if self.confirm():
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock is
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Let another process take the lock."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
