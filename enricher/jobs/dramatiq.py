"""The distributed job queue: Dramatiq workers on RabbitMQ (``amqp://``) or Redis (``redis://``), on
any number of machines (``enricher worker``), all on one store.

``submit`` stores the job, as the thread queue does, and sends a planning message. Planning reads the
manifests, records the total and sends one message per ``message_canvases`` canvases (fewer in the
job's last messages, so that the workers end together). Each canvas
message enriches its canvases with the model its worker process loaded once (reading its manifest from
the store once per job), and commits them all with their done markers in one store transaction
(``run.commit_canvases``, the thread queue's own step): the message is the unit of redelivery, and one
transaction a message, not one a canvas, keeps the store's share of a worker's CPU small. The last
canvases to commit end the job (``Store.finish_job``). Delivery is at least once, so every write
is idempotent: a redelivered canvas skips what is done, and committing a canvas twice reconciles to
the same annotations. Messages of a cancelled job do nothing.

A canvas's own failure (an image that cannot be fetched or decoded) is recorded in the job, as in
the embedded run. Any other failure is retried with backoff by Dramatiq's Retries middleware
(``job_retries`` times; input errors are not retried); a message that gives up lands in the broker's
dead-letter queue (``enricher.XQ``) and its canvases in the job's errors.

Politeness (enricher.jobs.politeness): each request to a IIIF host takes a slot of the host's limits
shared through Redis, and a message whose host is busy or paused is sent again with that delay
instead of holding a worker thread, so the canvases of other hosts go on meanwhile.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware, Retries

from .. import provenance
from ..addresses import AddressGuard, GuardedTransport
from ..clock import now
from ..config import Config
from ..detect import Detector
from ..errors import (
    BrokerError,
    ConfigError,
    EnricherError,
    InputError,
    StoreUnavailable,
)
from ..fetch import Fetcher
from ..manifest import Manifest, parse_manifest
from ..store import Store, StoredJob
from ..store.records import FINISHED_STATES
from .politeness import PoliteTransport, host_limits, host_of
from .run import Stopped, enrich_canvases, job_settings, loaded, plan_job, tuned

log = logging.getLogger(__name__)

QUEUE = "enricher"  # Dramatiq adds enricher.DQ (delayed messages) and enricher.XQ (dead letters)
PLAN, CANVASES = "enricher_plan", "enricher_canvases"
MIN_BACKOFF_MS, MAX_BACKOFF_MS = 1_000, 300_000
TIME_LIMIT_MS = 3_600_000  # a message of a few tiled canvases may take long on a CPU
DEFER_JITTER = 1.0  # seconds added at random to a deferred message's delay, so they do not return together
STOP_MS = 600_000  # how long stop() waits for the messages in flight by default
# Redis has no connection-bound delivery: a worker that stops sending heartbeats for this long is dead
# and its unacknowledged messages go back to the queue at the next maintenance, which runs on this
# many of a million commands (Dramatiq's defaults, 60 s and 1,000, leave them stranded for minutes)
REDIS_HEARTBEAT_MS, REDIS_MAINTENANCE_CHANCE = 15_000, 50_000
TAIL = 4  # a message holds at most this fraction (1 / TAIL) of the job's canvases left to send
MANIFESTS_KEPT = 16  # parsed manifests a worker process keeps, of the jobs it ran last


def open_broker(url: str) -> dramatiq.Broker:
    """The Dramatiq broker at URL (amqp:// RabbitMQ, redis:// Redis); ConfigError for another scheme."""
    if url.startswith(("amqp://", "amqps://")):
        return RabbitmqBroker(url=url)
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url=url, heartbeat_timeout=REDIS_HEARTBEAT_MS, maintenance_chance=REDIS_MAINTENANCE_CHANCE)
    raise ConfigError("the broker must be an amqp:// (RabbitMQ) or redis:// (Redis) URL", where=redacted(url))


def redacted(url: str) -> str:
    """URL without its user and password, for messages and logs."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def messages(todo: list[tuple[str, list[str]]], size: int) -> Iterator[tuple[str, list[str]]]:
    """Cut each manifest's canvases to do, (key, canvas ids) in TODO, into messages of SIZE canvases,
    smaller towards the job's end (at most a TAIL-th of the canvases left), so that the workers run out
    of work within a canvas or two of each other rather than one running its last full messages while
    the others idle."""
    left = sum(len(canvas_ids) for _, canvas_ids in todo)
    for key, canvas_ids in todo:
        start = 0
        while start < len(canvas_ids):
            part = canvas_ids[start:start + min(max(1, size), -(-left // TAIL))]
            yield key, part
            start, left = start + len(part), left - len(part)


class SharedDetector(Detector):
    """A Detector that several worker threads share: ultralytics' predictor is not thread-safe, so the
    model runs one batch at a time per process while the other threads fetch and commit."""

    def __init__(self, config: Config):
        super().__init__(config)
        self._lock = threading.Lock()  # with_config's copies share it, and the model

    def predict(self, images):
        """Detect objects in each image, one batch at a time in this process."""
        with self._lock:
            return super().predict(images)


def _default_factory(config: Config, fetcher: Fetcher):
    from ..pipeline import (
        Enricher,  # loads torch and ultralytics: only in a process that runs workers
    )

    return Enricher(config, detector=SharedDetector(config), fetcher=fetcher)


class _DeadLetters(Middleware):
    """Record in the job what a message that gave up (now in the dead-letter queue) left undone."""

    def __init__(self, queue: DramatiqQueue):
        self.queue = queue

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        if exception is not None and message.failed:
            self.queue.gave_up(message.actor_name, message.args, exception, message.options.get("retries", 0))


class DramatiqQueue:
    """Jobs in the store, their work in messages on the broker that setting broker names; start() runs
    Dramatiq workers in this process (``enricher worker`` does, the web processes need not)."""

    def __init__(self, config: Config, store: Store,
                 enricher_factory: Callable[[Config, Fetcher], Any] = _default_factory):
        if not config.broker:
            raise ConfigError("the dramatiq job queue needs a broker URL (amqp://... or redis://...)", where="broker")
        self.config, self.store = config, store
        self.limits = host_limits(config, config.broker)
        transport = GuardedTransport(AddressGuard(config))
        if self.limits is not None:
            transport = PoliteTransport(transport, self.limits, config.backoff)
        self.fetcher = Fetcher(config, transport=transport)
        self._factory = enricher_factory
        self._enricher = None
        self._loading = threading.Lock()
        self._manifests: dict[tuple[str, str], Manifest] = {}  # (job id, key), oldest first
        self._parsing = threading.Lock()
        self._worker: dramatiq.Worker | None = None
        self.broker = open_broker(config.broker)
        self.broker.add_middleware(_DeadLetters(self), before=Retries)  # after_* hooks run in reverse: after Retries
        options = {"broker": self.broker, "queue_name": QUEUE, "max_retries": config.job_retries,
                   "min_backoff": MIN_BACKOFF_MS, "max_backoff": MAX_BACKOFF_MS, "time_limit": TIME_LIMIT_MS,
                   "throws": (InputError,)}
        self.plan = dramatiq.actor(self._plan_job, actor_name=PLAN, **options)
        self.canvases = dramatiq.actor(self._run_canvases, actor_name=CANVASES, **options)

    # the queue

    def submit(self, params: dict) -> StoredJob:
        """Store a job and send its planning message.

        Raises BrokerError when the broker cannot be reached (the job is then failed, with that reason).
        """
        job = self.store.create_job(params)
        try:
            self.plan.send(job.id)
        except dramatiq.errors.BrokerError as exc:
            reason = f"cannot queue the job: the broker does not answer ({exc.__class__.__name__}: {exc})"
            self.store.set_job(job.id, expect="queued", state="failed", error=reason)
            raise BrokerError(reason, where=redacted(self.config.broker)) from None
        return job

    def cancel(self, job_id: str) -> StoredJob | None:
        """Cancel a job that has not finished: its remaining messages do nothing; None when it is unknown."""
        return self.store.cancel_job(job_id)

    def start(self) -> None:
        """Load the model and run it once, then run Dramatiq workers (worker_threads threads) in this process.

        Raises ModelError when the weights cannot be loaded, before any message is taken.
        """
        if self._worker is None:
            self._loaded()
            threads = self.config.worker_threads
            self._worker = dramatiq.Worker(self.broker, worker_threads=threads)
            # a message per thread and one more, so that a thread that frees up starts at once rather than
            # after the broker's round trip (the job's last messages are small: one held here costs little)
            self._worker.queue_prefetch = threads + 1
            self._worker.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop this process's workers once the messages in flight are done (at most TIMEOUT seconds)."""
        if self._worker is not None:
            self._worker.stop(timeout=STOP_MS if timeout is None else int(timeout * 1000))
            self._worker = None
        self.broker.close()
        self.fetcher.close()
        if self.limits is not None:
            self.limits.close()

    # the actors

    def _plan_job(self, job_id: str) -> None:
        """Read the job's manifests, record its total and send a message per few canvases not done."""
        job = self.store.job(job_id)
        if job is None or job.state in FINISHED_STATES:
            return
        if job.state == "queued":
            self.store.set_job(job_id, expect="queued", state="running", started=now())
        try:
            config, _ = job_settings(job, self.config)
            plan = plan_job(job, self.store, config, self.fetcher)
            self.store.set_job(job_id, provenance=provenance.describe(tuned(self._loaded(), config), config))
        except StoreUnavailable:
            raise  # the store's server went away: Dramatiq retries the message once it may be back
        except EnricherError as exc:  # as in the embedded run: a job whose source is unusable fails
            self.store.set_job(job_id, expect="running", state="failed", error=str(exc))
            return
        done = self.store.done_canvases(job_id)
        todo = [(key, [canvas.id for canvas in canvases if (key, canvas.id) not in done]) for _, key, canvases in plan]
        for key, canvas_ids in messages(todo, self.config.message_canvases):
            self.canvases.send(job_id, key, canvas_ids)
        self.store.finish_job(job_id)  # when nothing was left to do (a redelivered plan, no canvases)

    def _run_canvases(self, job_id: str, key: str, canvas_ids: list[str]) -> None:
        """Enrich canvases of one manifest of a running job and commit them together; defer them while their
        host is busy."""
        job = self.store.job(job_id)
        if job is None or job.state != "running":
            return  # cancelled or ended: a message left over does nothing
        done = self.store.done_canvases(job_id)
        todo = [canvas_id for canvas_id in canvas_ids if (key, canvas_id) not in done]
        if not todo:
            return  # a redelivered message whose canvases were committed
        manifest = self._manifest(job_id, key)
        wait = self._busy(manifest, todo)
        if wait > 0:
            self.canvases.send_with_options(args=(job_id, key, todo), delay=int((wait + random.uniform(0, DEFER_JITTER)) * 1000))
            return
        config, region = job_settings(job, self.config)
        try:
            wanted = set(todo)  # the message names its canvases by id
            canvases = [canvas for canvas in manifest.canvases if canvas.id in wanted]
            enrich_canvases(job_id, self.store, tuned(self._loaded(), config), manifest, key, canvases, region,
                            together=True)
        except Stopped:
            log.info("job %s was cancelled during a message", job_id)

    def _manifest(self, job_id: str, key: str) -> Manifest:
        """The job's manifest KEY as stored, parsed once per job in this process: reading and parsing it
        in every message would cost each message time in proportion to the whole manifest.

        Raises InputError when the store does not hold it.
        """
        with self._parsing:
            manifest = self._manifests.get((job_id, key))
            if manifest is None:
                stored = self.store.manifest(key)
                if stored is None:
                    raise InputError(f"the job's manifest {key} is not in the store", where=job_id)
                manifest = self._manifests[job_id, key] = parse_manifest(stored.document, stored.url)
                while len(self._manifests) > MANIFESTS_KEPT:
                    self._manifests.pop(next(iter(self._manifests)))
            return manifest

    def _busy(self, manifest, canvas_ids: list[str]) -> float:
        """Seconds until every image host of these canvases takes a request (0: now, or no limits)."""
        if self.limits is None:
            return 0.0
        wanted = set(canvas_ids)
        urls = {c.service_id or c.image_url for c in manifest.canvases if c.id in wanted}
        return max((self.limits.delay(host_of(url)) for url in urls if url), default=0.0)

    def _loaded(self):
        """This process's Enricher, with the model loaded once."""
        with self._loading:
            if self._enricher is None:
                self._enricher = loaded(lambda: self._factory(self.config, self.fetcher))
            return self._enricher

    def gave_up(self, actor: str, args: tuple, exception: BaseException, retries: int) -> None:
        """Record a message that gave up: its canvases fail with the reason, or the job when planning did."""
        job_id = args[0]
        reason = f"gave up after {retries} retries: {exception}" if retries else f"cannot run: {exception}"
        with self.store.transaction():
            job = self.store.job(job_id)
            if job is None or job.state in FINISHED_STATES:
                return
            if actor == PLAN:
                self.store.set_job(job_id, expect=job.state, state="failed", error=reason)
                return
            _, key, canvas_ids = args
            done = self.store.done_canvases(job_id)
            for canvas_id in canvas_ids:
                if (key, canvas_id) not in done:
                    self.store.mark_canvas_done(job_id, key, canvas_id, reason)
            self.store.finish_job(job_id)
