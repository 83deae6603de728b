"""Push every annotation change to an external triplestore (Fuseki, GraphDB, Virtuoso, Oxigraph server)
through the SPARQL 1.1 Graph Store Protocol (``gsp``: a PUT or DELETE of the annotation's named graph)
or SPARQL 1.1 Update (``update``: one request per batch, DROP SILENT GRAPH then INSERT DATA).

The backlog is the store's change log itself: the Pusher is a change-log consumer (enricher.follow)
whose stored position, one per target URL, says up to where every change has been delivered, and
moves only after the target accepted a batch. Each change is sent as the annotation's
state at the time of sending, as served with its calibrated confidence (live: its graph replaced;
deleted: its graph dropped), so sending a batch twice does no harm and an outage of any length loses
nothing: the changes wait in the log.

A follower thread drains the backlog every ``interval`` seconds (or at once after ``wake()``), and
after a failure waits twice as long each time, up to ``max_backoff``. One process per store pushes:
the one that holds the store's ``push`` leadership lock; the others retry it.

Errors of the target: a connection failure, a timeout, a 5xx, 408 or 429 is an outage (the batch is
retried); any other 4xx means the target refuses that one annotation (an IRI it will not take, say):
it is logged and skipped, so it cannot hold up the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from . import rdf
from .config import Config
from .errors import FetchError, InputError
from .follow import FollowerThread, StoredPosition, follow
from .served import Calibrations
from .statistics import STATISTICS_GRAPH, statistics_ntriples
from .store import Change, Store
from .urls import public_base
from .vocab import loaded

log = logging.getLogger(__name__)

PROTOCOLS = ("gsp", "update")
BATCH = 500  # change-log rows per round (one SPARQL Update request with protocol update)
RETRIED = {408, 429}  # client errors that mean "later", not "never"


class Rejected(Exception):
    """The target refused one request for good (a 4xx other than 408 and 429)."""


class Pusher(StoredPosition):
    """Delivers the store's changes to one external triplestore; thread-safe."""

    def __init__(
        self,
        store: Store,
        url: str,
        protocol: str = "gsp",
        *,
        interval: float = 5.0,
        max_backoff: float = 300.0,
        timeout: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        base: str | None = None,
        vocab: Sequence[str | Path] = (),
    ):
        """BASE, the public base URL, names the calibrations annotations are sent with (as served);
        without it they are sent as stored. VOCAB: the extra mapping files, which name the concepts of
        the classes the statistics graph counts."""
        if protocol not in PROTOCOLS:
            raise InputError(f"push protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}", where=url)
        if not url.startswith(("http://", "https://")):
            raise InputError("the push URL must be an http(s) URL", where=url)
        self.store, self.url, self.protocol, self.base = store, url, protocol, base
        self.name = f"push {url}"
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()  # one round at a time within this process
        self._thread = FollowerThread(store, self, interval=interval, leader="push", max_backoff=max_backoff,
                                      batch=BATCH)
        self.skipped: list[str] = []  # annotations the target refused, in this process's lifetime
        self.mappings = vocab  # the extra mapping files, which name the classes' concepts
        self._stated: tuple | None = None  # the class counts this process last sent

    @property
    def interval(self) -> float:
        """Seconds between rounds (doubling after each failure, up to max_backoff)."""
        return self._thread.interval

    @classmethod
    def from_config(cls, config: Config, store: Store) -> Pusher | None:
        """The Pusher the settings ask for (push_url, push_protocol, push_interval, timeout), or None
        when push_url is empty."""
        if not config.push_url:
            return None
        return cls(store, config.push_url, config.push_protocol, interval=config.push_interval, timeout=config.timeout,
                   base=public_base(config.base_url), vocab=config.vocab)

    # ---- the backlog ----------------------------------------------------------------------------------

    def status(self) -> dict:
        """Where delivery stands: the position delivered, changes waiting, failures in a row, last error."""
        cursor = self.store.cursor(self.name)
        return {
            "target": self.url, "protocol": self.protocol, "delivered": cursor.seq,
            "pending": self.store.last_change() - cursor.seq, "failures": cursor.failures, "error": cursor.error,
            "updated": cursor.updated,
        }

    def pending(self) -> int:
        """How many change-log entries wait to be delivered."""
        return self.status()["pending"]

    # ---- delivering ----------------------------------------------------------------------------------

    def push_once(self) -> int:
        """Deliver the next batch of changes; return how many log entries it covered (0: none waits).

        Raises FetchError when the target is unreachable or failing; the batch then stays in the backlog.
        """
        return follow(self.store, self, BATCH, rounds=1)

    def drain(self) -> int:
        """Deliver every waiting change; return how many log entries that was. Raises FetchError."""
        return follow(self.store, self, BATCH)

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Send the current state of each annotation CHANGES name, then move the stored position.
        Raises FetchError (recorded as a failure; the position stays)."""
        with self._lock:
            if changes[-1].seq <= self.position(store):
                return  # another round of this process delivered them meanwhile
            live: dict[str, str] = {}
            gone: list[str] = []
            calibrations = Calibrations(store, self.base) if self.base else None
            for anno_id in dict.fromkeys(change.anno_id for change in changes):
                stored = store.get(anno_id)
                if stored is None or stored.deleted:
                    gone.append(anno_id)
                    continue
                try:
                    document = calibrations.document(stored) if calibrations else stored.document
                    live[anno_id] = rdf.annotation_nquads(document, None)
                except InputError as exc:
                    self._skip(anno_id, f"not valid RDF: {exc}")
                    gone.append(anno_id)  # whatever the target held for it is stale now
            try:
                self._send(live, gone)
                self.restate(store)
            except FetchError as exc:
                store.cursor_failed(self.name, str(exc))
                raise
            store.move_cursor(self.name, changes[-1].seq)

    def replace_graphs(self, graphs: Mapping[str, str]) -> None:
        """Make each named graph of GRAPHS hold exactly its N-Triples (the vocabulary, say), outside the
        change log. Raises FetchError when the target is unreachable or failing."""
        self._send(graphs, ())

    def restate(self, store: Store) -> None:
        """Send the statistics graph (enricher.statistics) with STORE's class counts, unless this process
        sent these last. Raises FetchError."""
        counts = tuple(store.class_counts())
        if counts != self._stated:
            self._send({STATISTICS_GRAPH: statistics_ntriples(counts, loaded(self.mappings))}, ())
            self._stated = counts

    def _skip(self, anno_id: str, why: str) -> None:
        log.warning("push to %s skips annotation %s: %s", self.url, anno_id, why)
        self.skipped.append(anno_id)

    def _send(self, live: Mapping[str, str], gone: Sequence[str]) -> None:
        if self.protocol == "gsp":
            for anno_id, triples in live.items():
                self._one(anno_id, "PUT", triples)
            for anno_id in gone:
                self._one(anno_id, "DELETE", None)
            return
        try:
            self._request("POST", self.url, None, _update(live, gone))
        except Rejected:  # one annotation spoils the batch: find it by sending them one at a time
            for anno_id, triples in live.items():
                self._one(anno_id, "POST", _update({anno_id: triples}, ()))
            for anno_id in gone:
                self._one(anno_id, "POST", _update({}, [anno_id]))

    def _one(self, anno_id: str, method: str, body: str | None) -> None:
        graph = {"graph": anno_id} if self.protocol == "gsp" else None
        try:
            self._request(method, self.url, graph, body)
        except Rejected as exc:
            self._skip(anno_id, str(exc))

    def _request(self, method: str, url: str, params: dict | None, body: str | None) -> None:
        """Send one request. Raises Rejected (a 4xx that will not change), FetchError (an outage)."""
        if body is None:
            headers = {}
        elif self.protocol == "gsp":
            headers = {"Content-Type": "application/n-triples"}
        else:
            headers = {"Content-Type": "application/sparql-update"}
        try:
            response = self._client.request(
                method, url, params=params, content=body.encode("utf-8") if body else None, headers=headers
            )
        except httpx.HTTPError as exc:
            raise FetchError(f"the triplestore cannot be reached: {exc}", where=url) from None
        status = response.status_code
        if status < 300 or (method == "DELETE" and status == 404):  # a graph already gone is fine
            return
        detail = f"{method} answered {status}: {response.text[:300]}"
        if 400 <= status < 500 and status not in RETRIED:
            raise Rejected(detail)
        raise FetchError(f"the triplestore failed: {detail}", where=url)

    # ---- the background thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that drains the backlog (once this process holds the push lock)."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread after the request in flight and let another process push."""
        self._thread.stop(timeout)

    def close(self) -> None:
        """Stop, and close the HTTP connections."""
        self.stop()
        self._client.close()

    def wake(self) -> None:
        """Push now rather than at the next interval (call after a write)."""
        self._thread.wake()

    @property
    def holds_lock(self) -> bool:
        """Whether this Pusher is the one that pushes for its store."""
        return self._thread.leads

    def acquire(self) -> bool:
        """Take the push lock without waiting; return whether this process pushes for the store."""
        return self._thread.acquire()

    def release(self) -> None:
        """Let another process push."""
        self._thread.release()


def _update(live: Mapping[str, str], gone: Sequence[str]) -> str:
    """A SPARQL Update that makes each graph of LIVE hold its N-Triples and drops the graphs of GONE."""
    drops = " ;\n".join(f"DROP SILENT GRAPH <{name}>" for name in [*live, *gone])
    if not live:
        return drops
    inserts = "\n".join(f"GRAPH <{name}> {{\n{triples}}}" for name, triples in live.items())
    return f"{drops} ;\nINSERT DATA {{\n{inserts}\n}}"

