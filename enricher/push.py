"""Push every annotation change to an external triplestore (Fuseki, GraphDB, Virtuoso, Oxigraph server)
through the SPARQL 1.1 Graph Store Protocol (``gsp``: a PUT or DELETE of the annotation's named graph)
or SPARQL 1.1 Update (``update``: one request per batch, DROP SILENT GRAPH then INSERT DATA).

The backlog is the store's change log itself: a row in ``push_cursor`` (in the store's SQLite file,
created on first use) holds, per target URL, the position up to which every change has been
delivered, and moves only after the target accepted a batch. Each change is sent as the annotation's
state at the time of sending, as served with its calibrated confidence (live: its graph replaced;
deleted: its graph dropped), so sending a batch twice does no harm and an outage of any length loses
nothing: the changes wait in the log.

A daemon thread drains the backlog every ``interval`` seconds (or at once after ``wake()``), and
after a failure waits twice as long each time, up to ``max_backoff``. One process per database pushes:
the thread first takes an exclusive ``fcntl.flock`` on ``{database}.push.lock``; the others retry it.

Errors of the target: a connection failure, a timeout, a 5xx, 408 or 429 is an outage (the batch is
retried); any other 4xx means the target refuses that one annotation (an IRI it will not take, say):
it is logged and skipped, so it cannot hold up the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import httpx

from . import rdf
from .background import Daemon, ProcessLock
from .clock import now
from .config import Config
from .errors import FetchError, InputError
from .review import Calibrations
from .store import Store
from .urls import public_base

log = logging.getLogger(__name__)

PROTOCOLS = ("gsp", "update")
BATCH = 500  # change-log rows per round (one SPARQL Update request with protocol update)
LOCK_SUFFIX = ".push.lock"
LOCK_RETRY_SECONDS = 5.0
RETRIED = {408, 429}  # client errors that mean "later", not "never"
TABLE = """CREATE TABLE IF NOT EXISTS push_cursor (
    target TEXT PRIMARY KEY, seq INTEGER NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
    error TEXT, updated TEXT)"""


class Rejected(Exception):
    """The target refused one request for good (a 4xx other than 408 and 429)."""


class Pusher:
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
    ):
        """BASE, the public base URL, names the calibrations annotations are sent with (as served);
        without it they are sent as stored."""
        if protocol not in PROTOCOLS:
            raise InputError(f"push protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}", where=url)
        if not url.startswith(("http://", "https://")):
            raise InputError("the push URL must be an http(s) URL", where=url)
        self.store, self.url, self.protocol, self.base = store, url, protocol, base
        self.interval, self.max_backoff = interval, max_backoff
        self._process_lock = ProcessLock(store.path.with_name(store.path.name + LOCK_SUFFIX))
        self.lock_path = self._process_lock.path
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()  # one round at a time within this process
        self._daemon = Daemon("enricher-push", self._step, self.release)
        self._failures = 0  # failed rounds in a row, for the backoff
        self._ready = False
        self.skipped: list[str] = []  # annotations the target refused, in this process's lifetime

    @classmethod
    def from_config(cls, config: Config, store: Store) -> Pusher | None:
        """The Pusher the settings ask for (push_url, push_protocol, push_interval, timeout), or None
        when push_url is empty."""
        if not config.push_url:
            return None
        return cls(store, config.push_url, config.push_protocol, interval=config.push_interval, timeout=config.timeout,
                   base=public_base(config.base_url))

    # ---- the backlog ----------------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ready:
            return
        with self.store.transaction() as db:
            db.execute(TABLE)
            db.execute("INSERT OR IGNORE INTO push_cursor (target, seq) VALUES (?, 0)", (self.url,))
        self._ready = True

    def status(self) -> dict:
        """Where delivery stands: the position delivered, changes waiting, failures in a row, last error."""
        self._ensure()
        row = self.store.db.execute(
            "SELECT seq, failures, error, updated FROM push_cursor WHERE target = ?", (self.url,)
        ).fetchone()
        return {
            "target": self.url, "protocol": self.protocol, "delivered": row[0],
            "pending": self.store.last_change() - row[0], "failures": row[1], "error": row[2], "updated": row[3],
        }

    def pending(self) -> int:
        """How many change-log entries wait to be delivered."""
        return self.status()["pending"]

    def _record(self, seq: int | None, error: str | None) -> None:
        with self.store.transaction() as db:
            if error is None:
                db.execute(
                    "UPDATE push_cursor SET seq = ?, failures = 0, error = NULL, updated = ? WHERE target = ?",
                    (seq, now(), self.url),
                )
            else:
                db.execute(
                    "UPDATE push_cursor SET failures = failures + 1, error = ?, updated = ? WHERE target = ?",
                    (error, now(), self.url),
                )

    # ---- delivering ----------------------------------------------------------------------------------

    def push_once(self) -> int:
        """Deliver the next batch of changes; return how many log entries it covered (0: none waits).

        Raises FetchError when the target is unreachable or failing; the batch then stays in the backlog.
        """
        with self._lock:
            self._ensure()
            cursor = self.status()["delivered"]
            changes = self.store.changes(cursor, BATCH)
            if not changes:
                return 0
            live: dict[str, str] = {}
            gone: list[str] = []
            calibrations = Calibrations(self.store, self.base) if self.base else None
            for anno_id in dict.fromkeys(change.anno_id for change in changes):
                stored = self.store.get(anno_id)
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
            except FetchError as exc:
                self._record(None, str(exc))
                raise
            self._record(changes[-1].seq, None)
            return len(changes)

    def drain(self) -> int:
        """Deliver every waiting change; return how many log entries that was. Raises FetchError."""
        delivered = 0
        while pushed := self.push_once():
            delivered += pushed
        return delivered

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
        self._daemon.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread after the request in flight and let another process push."""
        self._daemon.stop(timeout)
        self._failures = 0
        self.release()

    def close(self) -> None:
        """Stop, and close the HTTP connections."""
        self.stop()
        self._client.close()

    def wake(self) -> None:
        """Push now rather than at the next interval (call after a write)."""
        self._daemon.wake()

    @property
    def holds_lock(self) -> bool:
        """Whether this Pusher is the one that pushes for its database."""
        return self._process_lock.held

    def acquire(self) -> bool:
        """Take the push lock without waiting; return whether this process pushes for the database."""
        return self._process_lock.acquire()

    def release(self) -> None:
        """Let another process push."""
        self._process_lock.release()

    def _step(self) -> float:
        """One round of the thread: drain the backlog if this process pushes; return the seconds to wait."""
        if not self.acquire():
            return LOCK_RETRY_SECONDS
        try:
            self.drain()
        except FetchError as exc:
            self._failures += 1
            wait = min(self.max_backoff, self.interval * 2**self._failures)
            log.warning("push to %s failed (%d in a row), next try in %.1f s: %s", self.url, self._failures, wait, exc)
            return wait
        except Exception:  # the database, say: try again later rather than end the thread
            log.exception("push to %s", self.url)
            return LOCK_RETRY_SECONDS
        self._failures = 0
        return self.interval


def _update(live: Mapping[str, str], gone: Sequence[str]) -> str:
    """A SPARQL Update that makes each graph of LIVE hold its N-Triples and drops the graphs of GONE."""
    drops = " ;\n".join(f"DROP SILENT GRAPH <{name}>" for name in [*live, *gone])
    if not live:
        return drops
    inserts = "\n".join(f"GRAPH <{name}> {{\n{triples}}}" for name, triples in live.items())
    return f"{drops} ;\nINSERT DATA {{\n{inserts}\n}}"

