"""The in-process job queue, the default: jobs wait in the store, and a runner thread in one process
per store runs them one at a time, with the model loaded once.

Every process that wants to run jobs (each gunicorn worker builds the app and calls ``start()`` after
the fork) starts a runner thread; the thread first takes the store's ``jobs`` leadership lock. The
holder runs jobs; the others retry the lock every few seconds, so when the holder's process dies
another takes over and puts the job it left running back in the queue. Never start a runner in a
preloading master: threads do not survive ``fork``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..background import Daemon
from ..config import Config
from ..errors import StoreUnavailable
from ..store import Store, StoredJob
from .run import loaded, run_job

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often the lock holder looks for jobs queued by other processes
LOCK_RETRY_SECONDS = 5.0  # how often a runner without the lock tries to take it over


def _default_factory(config: Config):
    from ..pipeline import (
        Enricher,  # loads torch and ultralytics: only when a job needs them
    )

    return Enricher(config)


class ThreadQueue:
    """Queues jobs in the store and runs them in a daemon thread of this process, while it leads."""

    def __init__(self, config: Config, store: Store, enricher_factory: Callable[[Config], Any] = _default_factory):
        self.config, self.store = config, store
        self._leader = store.leader("jobs")
        self._factory = enricher_factory
        self._enricher = None
        self._daemon = Daemon("enricher-jobs", self._step, self.release)

    # the queue

    def submit(self, params: dict) -> StoredJob:
        """Queue a job with these parameters; the runner takes it at once if it runs in this process."""
        job = self.store.create_job(params)
        self._daemon.wake()
        return job

    def cancel(self, job_id: str) -> StoredJob | None:
        """Cancel a queued or running job (it stops before its next canvas); None when it is unknown."""
        return self.store.cancel_job(job_id)

    # the runner

    @property
    def holds_lock(self) -> bool:
        """Whether this runner is the one that runs jobs for its store."""
        return self._leader.held

    def start(self) -> None:
        """Start the runner thread (it runs jobs once it holds the lock)."""
        self._daemon.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the canvas in flight; a job left unfinished goes back to the queue."""
        if self._daemon.stop(timeout):
            self.release()
        # else still finishing a canvas; the thread releases the lock when it ends

    def acquire(self) -> bool:
        """Take the runner lock without waiting; return whether this runner holds it.

        The runner that takes it requeues the jobs a dead runner left running (or this one, when it
        lost the lock: it left its job between two canvases then).
        """
        if self._leader.confirm():
            return True
        if not self._leader.acquire():
            return False
        requeued = self.store.requeue_interrupted()
        if requeued:
            log.info("requeued %d interrupted job(s)", requeued)
        return True

    def release(self) -> None:
        """Let another runner take over."""
        self._leader.release()

    def _step(self) -> float:
        """One round of the thread: run the queued jobs if this runner holds the lock; return the seconds to wait."""
        try:
            if self.acquire():
                self.run_pending()
        except StoreUnavailable as exc:  # the server went away, and a lock held in its session with it:
            log.warning("job runner: %s", exc)  # take the lock anew, which requeues the job left running
            self.release()
        except Exception:  # a failing database must not end the thread; it retries at the next poll
            log.exception("job runner")
        return POLL_SECONDS if self.holds_lock else LOCK_RETRY_SECONDS

    def run_pending(self) -> int:
        """Run queued jobs until none is left (or the runner stops); return how many ran.

        Call it only while holding the lock (acquire()).
        """
        ran = 0
        while not self._leaving() and (job := self.store.claim_job()) is not None:
            if self._enricher is None:
                self._enricher = loaded(lambda: self._factory(self.config))  # once per runner
            run_job(job, self.store, self.config, self._enricher, self._leaving)
            ran += 1
        return ran

    def _leaving(self) -> bool:
        """Whether to leave the jobs between two canvases: the runner stops, or it lost the lock (its
        connection died), so another runner may be taking the jobs over."""
        return self._daemon.stopping or not self._leader.confirm()
