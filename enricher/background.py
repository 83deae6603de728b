"""What the per-database background workers (the job runner, the pusher) share: a cross-process lock
that makes one process the worker for a database, and a daemon thread that repeats a step until stopped.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO


class ProcessLock:
    """An exclusive ``fcntl.flock`` on PATH; the kernel drops it when the holding process dies."""

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


class Daemon:
    """A daemon thread that calls STEP until stopped, each time then sleeping the seconds STEP returns
    (or until woken), and calls FINISH when it ends."""

    def __init__(self, name: str, step: Callable[[], float], finish: Callable[[], None]):
        self.name, self._step, self._finish = name, step, finish
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """Whether stop() was called since the last start()."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Start the thread, unless it runs already."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Cut the current sleep short."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to end and wait up to TIMEOUT for it; return whether it has ended."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._step())
            self._wake.clear()
        self._finish()
