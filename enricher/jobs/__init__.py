"""Jobs: running one (run.py: ``run_job``, with a stop callback) is separate from scheduling it, which
is a job queue's work. The web layer and the CLI only submit and cancel.

A queue implements ``JobQueue``; ``open_queue`` picks it from QUEUES by setting ``job_queue``. The
in-process thread queue (thread.py) is the default; a broker URL (setting broker) chooses Dramatiq
workers (dramatiq.py). A new queue is one module plus one entry here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Protocol

from ..config import Config
from ..errors import ConfigError
from ..store import Store, StoredJob

# setting job_queue -> "module:class"; the class takes (config, store, **options)
QUEUES = {"thread": "enricher.jobs.thread:ThreadQueue", "dramatiq": "enricher.jobs.dramatiq:DramatiqQueue"}


class JobQueue(Protocol):
    """Where jobs are submitted and cancelled, and whose workers run them."""

    def submit(self, params: dict) -> StoredJob: """Queue a job; return it as stored."""

    def cancel(self, job_id: str) -> StoredJob | None: """Cancel a job that has not finished (None: unknown)."""

    def start(self) -> None: """Start this process's worker."""

    def stop(self, timeout: float | None = None) -> None: """Stop this process's worker after the canvas in flight."""


def open_queue(config: Config, store: Store, **options: Any) -> JobQueue:
    """The job queue setting job_queue names (dramatiq whenever a broker is set), on STORE.

    Raises ConfigError for an unknown one.
    """
    chosen = "dramatiq" if config.broker else config.job_queue
    if chosen not in QUEUES:
        raise ConfigError(f"no job queue {chosen!r}; known: {', '.join(sorted(QUEUES))}", where="job_queue")
    module, name = QUEUES[chosen].split(":")
    return getattr(import_module(module), name)(config, store, **options)
