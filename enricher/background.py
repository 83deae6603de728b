"""A daemon thread that repeats a step until stopped: what the job runner and the change-log followers
run in the background."""

from __future__ import annotations

import threading
from collections.abc import Callable


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
