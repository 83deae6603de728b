"""A readers-writer lock shared by every process and thread on one machine, made of two ``flock``ed
files: ``{name}.lock``, held shared by each reader and exclusively by the writer, and ``{name}.gate``,
which a writer holds while it waits, so that readers arriving meanwhile queue behind it rather than
keep it out for ever. ``flock`` belongs to an open file, not to a process, so two threads of one
process exclude each other as two processes do; the kernel lets go when a killed process's files
close. Waits poll, so that each has a deadline.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

POLL_SECONDS = 0.005


class LockTimeout(Exception):
    """The lock stayed taken past the deadline."""


class FileRWLock:
    """Readers share, a writer excludes: ``with lock.shared(timeout)`` / ``with lock.exclusive(timeout)``."""

    def __init__(self, name: Path):
        self._lock = name.with_name(name.name + ".lock")
        self._gate = name.with_name(name.name + ".gate")

    def shared(self, timeout: float | None) -> AbstractContextManager[None]:
        """Hold the lock shared (waiting up to TIMEOUT seconds, None: for ever). Raises LockTimeout."""
        return self._hold(fcntl.LOCK_SH, timeout)

    def exclusive(self, timeout: float | None) -> AbstractContextManager[None]:
        """Hold the lock alone (waiting up to TIMEOUT seconds, None: for ever). Raises LockTimeout."""
        return self._hold(fcntl.LOCK_EX, timeout)

    @contextmanager
    def _hold(self, mode: int, timeout: float | None) -> Iterator[None]:
        """Pass the gate in MODE, then take the lock in MODE and let the gate go: a waiting writer
        holds the gate, so readers arriving after it wait behind it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._open(self._gate) as gate, self._open(self._lock) as lock:
            _take(gate, mode, deadline)
            try:
                _take(lock, mode, deadline)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            yield  # closing the file lets go

    def _open(self, path: Path) -> IO:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+")


def _take(handle: IO, mode: int, deadline: float | None) -> None:
    if deadline is None:
        fcntl.flock(handle, mode)
        return
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LockTimeout from None
            time.sleep(POLL_SECONDS)
