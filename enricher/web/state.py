"""What every view shares: the settings, the public base URL (enricher.urls builds on it), the store,
the job queue, this process's RDF index (see indexing), and the change-log followers: the index's,
Change Discovery's, OAI-PMH's records and the pusher to an external triplestore."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import current_app

from ..config import Config
from ..discovery import ChangeDiscovery
from ..errors import QueryTimeout
from ..follow import Consumer, FollowerThread
from ..harvest import Catalogue, HarvestRecords
from ..indexes import RDFIndex, open_index
from ..jobs import JobQueue, open_queue
from ..manifest import Manifest, parse_manifest
from ..push import Pusher
from ..store import Store, StoredManifest, open_store
from ..urls import public_base
from . import indexing
from .auth import token_names
from .pages import Materializer, PageBuilder, PageFiles

log = logging.getLogger(__name__)

MANIFEST_CACHE = 64  # parsed manifests kept per process
DISCOVERY_SECONDS = 1.0  # how often the Change Discovery follower looks at the change log
DISCOVERY_WAIT = 10.0  # longest a read of the change stream (or of OAI-PMH) waits for its follower to catch up


@dataclass
class Service:
    config: Config
    base: str = ""
    writers: dict[bytes, str] = field(default_factory=dict)
    page_builder: PageBuilder | None = None  # what the materializer writes (create_app sets it)
    _store: Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _index: RDFIndex | None = field(default=None, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _follower: FollowerThread | None = field(default=None, repr=False)
    _followers: dict[str, FollowerThread] = field(default_factory=dict, repr=False)  # by consumer name
    _catalogue: Catalogue | None = field(default=None, repr=False)
    _queue: JobQueue | None = field(default=None, repr=False)
    _pusher: Pusher | None = field(default=None, repr=False)
    _manifests: dict[str, tuple[dict, Manifest]] = field(default_factory=dict, repr=False)
    _pages: PageFiles | None = field(default=None, repr=False)
    _materializer: Materializer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base = public_base(self.config.base_url)
        self.writers = token_names(self.config.tokens)

    def store(self) -> Store:
        """The store setting database names, opened on first use (it keeps a connection per thread).

        Raises EnricherError when the database cannot be opened.
        """
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config.database)
            return self._store

    def pages(self) -> PageFiles:
        """The files that keep built container pages (enricher.web.pages)."""
        if self._pages is None:
            self._pages = PageFiles.from_config(self.config, self.base)
        return self._pages

    def queue(self) -> JobQueue:
        """The job queue (setting job_queue), opened on first use; its worker runs only once started.

        Raises ConfigError for an unknown queue, EnricherError when the database cannot be opened.
        """
        store = self.store()
        with self._lock:
            if self._queue is None:
                self._queue = open_queue(self.config, store)
            return self._queue

    def discovered(self) -> Store:
        """The store, once Change Discovery has followed its change log up to the latest change (or
        DISCOVERY_WAIT has passed): one process of those on the store follows it, the others wait.

        Raises EnricherError when the database cannot be opened.
        """
        return self._followed(ChangeDiscovery(self.base), "the change stream")

    def catalogue(self) -> Catalogue:
        """What manifests give aggregators (enricher.harvest), built on first use.

        Raises ConfigError for an aggregation file or vocabulary that cannot be read.
        """
        with self._lock:
            if self._catalogue is None:
                self._catalogue = Catalogue(self.config)
            return self._catalogue

    def harvested(self) -> Store:
        """The store, once the OAI-PMH records follow its change log up to the latest change (or
        DISCOVERY_WAIT has passed), as ``discovered`` does for Change Discovery.

        Raises ConfigError (see ``catalogue``), EnricherError when the database cannot be opened.
        """
        return self._followed(HarvestRecords(self.catalogue()), "the OAI-PMH records")

    def _followed(self, consumer: Consumer, what: str) -> Store:
        """The store, once the follower of CONSUMER (started on first use, in one process of those on
        the store: the leadership role is the consumer's name) has caught up with its change log."""
        store = self.store()
        with self._lock:
            follower = self._followers.get(consumer.name)
            if follower is None:
                follower = self._followers[consumer.name] = FollowerThread(
                    store, consumer, interval=DISCOVERY_SECONDS, leader=consumer.name)
                follower.start()
        latest = store.last_change()
        if consumer.position(store) < latest and not follower.wait_for(latest, DISCOVERY_WAIT):
            log.warning("%s lags behind the change log", what)
        return store

    def index(self) -> RDFIndex:
        """This process's RDF index, loaded on first use and brought up to date with the store, so
        it holds every committed write.

        Raises EnricherError when the database or a vocabulary file cannot be read, QueryTimeout (503)
        when another thread has been loading it for longer than sparql_timeout.
        """
        # bounded: loading 100,000 annotations takes about 40 s, and gunicorn kills a sync worker whose
        # request runs past its timeout
        if not self._index_lock.acquire(timeout=self.config.sparql_timeout):
            loading = str(indexing.index_path(self.config))
            raise QueryTimeout("the RDF index is still loading; try again in a minute", where=loading)
        try:
            if self._index is None:
                self._index = open_index(self.config, self.store())
                self._follower = self._index.follower(self.store(), indexing.FOLLOW_SECONDS)
                if self._follower is not None:
                    self._follower.start()
            index = self._index
        finally:
            self._index_lock.release()
        index.refresh(self.store())  # the index runs one sync at a time itself
        return index

    def warm_up(self) -> None:
        """Load the RDF index in a thread now, so the first query need not wait for it, and start
        writing container pages ahead of their requests (in one process of those on the store)."""
        if self.page_builder is not None and self.pages().enabled and self._materializer is None:
            build, size = self.page_builder, self.config.page_size
            self._materializer = Materializer(self.store(), self.pages(), lambda store: build(store, self.base, size))
            self._materializer.start()

        def load() -> None:
            try:
                self.index()
            except Exception:  # the first read reports it to its client
                log.exception("loading the RDF index")

        threading.Thread(target=load, name="enricher-index-load", daemon=True).start()

    def start_push(self) -> None:
        """Start pushing changes to the external triplestore, when setting push_url names one.

        Raises InputError for a push URL or protocol that cannot be used, EnricherError when the
        database cannot be opened.
        """
        if self.config.push_url:  # the store opens on first use, never for nothing
            self._pusher = Pusher.from_config(self.config, self.store())
            self._pusher.start()

    def changed(self) -> None:
        """Call after a write: the pusher sends it now rather than at its next round."""
        if self._pusher is not None:
            self._pusher.wake()

    def close(self) -> None:
        """Stop the job queue's worker, the pusher and the followers, close the index and the store."""
        if self._queue is not None:
            self._queue.stop()
            self._queue = None
        if self._materializer is not None:
            self._materializer.stop()
            self._materializer = None
        for follower in self._followers.values():
            follower.stop()
        self._followers.clear()
        if self._pusher is not None:
            self._pusher.close()
            self._pusher = None
        with self._index_lock:
            if self._follower is not None:
                self._follower.stop()
                self._follower = None
            if self._index is not None:
                self._index.close()
                self._index = None
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def parsed(self, stored: StoredManifest) -> Manifest:
        """STORED parsed, from a cache: parsing a large manifest per request would dominate the
        IIIF endpoints. An entry serves only while the stored document is still equal to it."""
        cached = self._manifests.get(stored.key)
        if cached is None or cached[0] != stored.document:
            cached = self._manifests[stored.key] = (stored.document, parse_manifest(stored.document, stored.url))
            while len(self._manifests) > MANIFEST_CACHE:
                self._manifests.pop(next(iter(self._manifests)))
        return cached[1]


def service() -> Service:
    """The Service of the current app."""
    return current_app.extensions["enricher"]
