"""Leadership for the SQLite backend: an exclusive ``fcntl.flock`` on a file next to the database,
which the kernel drops when the holding process dies, so another process takes over."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


class FileLock:
    """An exclusive lock on PATH, taken without waiting."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self) -> bool:
        """Take the lock without waiting; return whether this object holds it now."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
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
