"""The background job runner: take queued jobs from the store, run the pipeline on them, and commit each
canvas's annotations together with its done marker, so a killed process loses at most the canvas in
flight and a restarted one resumes after the canvases already done.

One runner per database. Every process that wants to run jobs (each gunicorn worker builds the app and
calls ``start()`` after the fork) starts a runner thread; the thread first takes an exclusive
``fcntl.flock`` on ``{database}.jobs.lock``. The holder runs jobs; the others retry the lock every few
seconds, so when the holder's process dies (the kernel drops its lock) another takes over and puts the
job it left running back in the queue. Never start a runner in a preloading master: threads do not
survive ``fork``.

``python -m enricher.jobs`` runs the same runner as a process of its own (settings from ENRICHER_*
variables or ``--config``), for deployments that switch ``job_worker`` off in the web processes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from .annotate import manifest_key
from .background import Daemon, ProcessLock
from .config import Config, load_config
from .errors import EnricherError, RegionError
from .store import Store, StoredJob

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often the lock holder looks for jobs queued by other processes
LOCK_RETRY_SECONDS = 5.0  # how often a runner without the lock tries to take it over
LOCK_SUFFIX = ".jobs.lock"


def _default_factory(config: Config):
    from .pipeline import Enricher  # loads torch and ultralytics: only when a job needs them

    return Enricher(config)


def tuned(enricher, config: Config):
    """Return ENRICHER with CONFIG's thresholds, sharing its loaded model, vocabulary and HTTP client."""
    detector = enricher.detector.with_config(config)
    return type(enricher)(config, detector=detector, vocabulary=enricher.vocabulary, fetcher=enricher.fetcher)


class Stopped(Exception):
    """The job was cancelled, or the runner is stopping: leave it between two canvases."""


class JobRunner:
    """Runs queued jobs in a daemon thread, one at a time, with the model loaded once."""

    def __init__(
        self,
        config: Config,
        store_path: str | Path,
        enricher_factory: Callable[[Config], Any] = _default_factory,
    ):
        self.config = config
        self.store_path = Path(store_path)
        self._lock = ProcessLock(self.store_path.with_name(self.store_path.name + LOCK_SUFFIX))
        self.lock_path = self._lock.path
        self._factory = enricher_factory
        self._enricher = None
        self._store: Store | None = None
        self._daemon = Daemon("enricher-jobs", self._step, self.release)

    @property
    def store(self) -> Store:
        """The Store (opened on first use; it keeps a connection per thread)."""
        if self._store is None:
            self._store = Store(self.store_path)
        return self._store

    @property
    def holds_lock(self) -> bool:
        """Whether this runner is the one that runs jobs for its database."""
        return self._lock.held

    def start(self) -> None:
        """Start the runner thread (it runs jobs once it holds the lock)."""
        self._daemon.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the canvas in flight; a job left unfinished goes back to the queue."""
        if not self._daemon.stop(timeout):
            return  # still finishing a canvas; the thread releases the lock when it ends
        self.release()
        if self._store is not None:
            self._store.close()
            self._store = None

    def wake(self) -> None:
        """Look for queued jobs now rather than at the next poll."""
        self._daemon.wake()

    def acquire(self) -> bool:
        """Take the runner lock without waiting; return whether this runner holds it.

        The runner that takes it requeues the jobs a dead runner left running.
        """
        if self._lock.held:
            return True
        if not self._lock.acquire():
            return False
        requeued = self.store.requeue_interrupted()
        if requeued:
            log.info("requeued %d interrupted job(s)", requeued)
        return True

    def release(self) -> None:
        """Let another runner take over."""
        self._lock.release()

    def _step(self) -> float:
        """One round of the thread: run the queued jobs if this runner holds the lock; return the seconds to wait."""
        try:
            if self.acquire():
                self.run_pending()
        except Exception:  # a failing database must not end the thread; it retries at the next poll
            log.exception("job runner")
        return POLL_SECONDS if self.holds_lock else LOCK_RETRY_SECONDS

    def run_pending(self) -> int:
        """Run queued jobs until none is left (or the runner stops); return how many ran.

        Call it only while holding the lock (acquire()).
        """
        ran = 0
        while not self._daemon.stopping and (job := self.store.claim_job()) is not None:
            self.run(job)
            ran += 1
        return ran

    def run(self, job: StoredJob) -> str:
        """Run a claimed job to its end, skipping canvases it already finished; return its final state."""
        store = self.store
        try:
            state, error = self._work(job)
        except Stopped:
            if self._daemon.stopping:
                store.set_job(job.id, expect="running", state="queued")
            state = store.job(job.id).state
            log.info("job %s left %s", job.id, state)
            return state
        except EnricherError as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # a bug fails the job visibly instead of killing the runner
            log.exception("job %s", job.id)
            state, error = "failed", f"internal error ({exc.__class__.__name__}); see the server log"
        store.set_job(job.id, expect="running", state=state, error=error)
        return store.job(job.id).state

    def _enricher_for(self, config: Config):
        if self._enricher is None:
            self._enricher = self._factory(self.config)  # the model loads here, once per runner
        return tuned(self._enricher, config)

    def _work(self, job: StoredJob) -> tuple[str, str | None]:
        """Enrich every manifest of the job; return its final state and error (failed: every canvas did)."""
        from .manifest import read_manifests
        from .pipeline import parse_region

        params, store = job.params, self.store
        source = params.get("manifest")
        if not isinstance(source, str):
            raise EnricherError("the job names no manifest", where=job.id)
        config = self.config.replace(conf=params.get("conf"), iou=params.get("iou"), tiled=params.get("tiled"))
        region = parse_region(params["region"]) if params.get("region") else None
        enricher = self._enricher_for(config)
        plan = _plan(read_manifests(source, enricher.fetcher, config), [str(c) for c in params.get("canvases") or []], source)
        for manifest, key, _ in plan:
            store.save_manifest(key, manifest.id, manifest.url, manifest.label, manifest.document)
        store.set_job(job.id, total=sum(len(ids) for _, _, ids in plan), manifests=[key for _, key, _ in plan])
        done = store.done_canvases(job.id)
        model = enricher.generator.model_sha256
        for manifest, key, ids in plan:
            todo = [canvas_id for canvas_id in ids if (key, canvas_id) not in done]
            if not todo:
                continue
            self._check(job.id)

            def on_event(name: str, data: dict, key: str = key) -> None:
                if name == "canvas_done":
                    self._store_canvas(job.id, key, model, data["result"])

            enricher.enrich(manifest, canvases=todo, region=region, on_event=on_event)
        finished = store.job(job.id)
        if finished.total and len(finished.errors) == finished.total:
            return "failed", f"every canvas failed; the first: {finished.errors[0]['error']}"
        return "done", None

    def _check(self, job_id: str) -> None:
        if self._daemon.stopping or self.store.job(job_id).state != "running":
            raise Stopped(job_id)

    def _store_canvas(self, job_id: str, key: str, model_sha256: str, result) -> None:
        """Commit a canvas's annotations and its done marker together (unless the job was stopped)."""
        store = self.store
        with store.transaction():
            self._check(job_id)  # inside the write lock: a cancellation lands before or after, never between
            if result.error is None:
                store.replace_machine_annotations(key, result.canvas.id, model_sha256, result.annotations)
            store.mark_canvas_done(job_id, key, result.canvas.id, result.note)  # failed or skipped: why


def _plan(manifests, wanted: list[str], source: str) -> list[tuple[Any, str, list[str]]]:
    """Return (manifest, key, canvas ids) for each distinct manifest with canvases to enrich.

    WANTED (canvas ids or 0-based indexes) applies to every manifest; empty means all canvases.
    Raises RegionError when a wanted canvas is in none of them.
    """
    plan, seen, matched = [], set(), set()
    for manifest in manifests:
        key = manifest_key(manifest.id)
        if key in seen:
            continue
        seen.add(key)
        chosen = [c for c in manifest.canvases if not wanted or c.id in wanted or str(c.index) in wanted]
        matched.update(w for c in chosen for w in (c.id, str(c.index)))
        if chosen:
            plan.append((manifest, key, [c.id for c in chosen]))
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise RegionError(f"canvases {', '.join(missing)} are not in the manifest", where=source)
    return plan


def main(argv: list[str] | None = None) -> int:
    """Run the job runner as a process of its own."""
    parser = argparse.ArgumentParser(prog="python -m enricher.jobs", description=main.__doc__)
    parser.add_argument("--config", help="settings file (TOML or JSON); ENRICHER_* variables also apply")
    parser.add_argument("--once", action="store_true", help="run the queued jobs, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(file=args.config)
        runner = JobRunner(config, config.database)
        if args.once:
            if not runner.acquire():
                print(f"enricher: error: another runner holds {runner.lock_path}", file=sys.stderr)
                return 1
            runner.run_pending()
            runner.stop()
            return 0
    except EnricherError as exc:
        print(f"enricher: error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.start()
    try:
        signal.pause()
    except KeyboardInterrupt:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
