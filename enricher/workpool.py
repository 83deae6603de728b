"""A pool of worker threads that runs urgent work before the rest: the pipeline's image fetches before
the plans of canvases further ahead, so the first batch waits for its own images, not for a window of
info.json requests queued in front of them."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

URGENT, LATER = 0, 1
_STOP = 2  # after everything queued: leaving the pool finishes the work handed to it


class WorkPool:
    """WORKERS threads named NAME-n, each running INITIALIZER first, taking work by priority, then in
    the order it came."""

    def __init__(self, workers: int, name: str, initializer: Callable[[], None] | None = None):
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._initializer = initializer
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, func: Callable, *args) -> Future:
        """Run FUNC(*ARGS) on a worker, before work of a later PRIORITY (URGENT, LATER) not yet started."""
        future: Future = Future()
        self._queue.put((priority, next(self._order), future, func, args))
        return future

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while True:
            priority, _, future, func, args = self._queue.get()
            if priority == _STOP:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func(*args))
                except BaseException as exc:  # handed to whoever waits on the future, as an executor does
                    future.set_exception(exc)

    def __enter__(self) -> WorkPool:
        return self

    def __exit__(self, *exc_info) -> None:
        for _ in self._threads:
            self._queue.put((_STOP, next(self._order), None, None, ()))
        for thread in self._threads:
            thread.join()
