"""The remote RDF index (setting ``index = "remote"``): ``/sparql`` answers from an external triplestore
over the SPARQL 1.1 Protocol (setting ``index_url``, its query endpoint), which the pusher
(enricher.push, setting ``push_url``) keeps current from the store's change log, in one process of the
cluster. Dumps stream from the system of record itself and VoID counts from it (enricher.dump), so no process holds
a copy of the data.

Queries keep the embedded index's rules and errors (enricher.index): updates and SERVICE are refused
before anything is sent; the answer comes back as SPARQL JSON results or N-Triples and is re-serialized
here in the format Accept or ``format`` asks for as it streams through (enricher.answer), row and
triple caps applied on the way. The triplestore must take the union of its named graphs as the
default graph, as the embedded index does (``oxigraph serve --union-default-graph``; see
docs/deploy.md for the others).

An instance moving up fills the empty triplestore once from the store in one stream (``RemoteIndex.load``,
``enricher load-index``); the pusher goes on from there.

Errors: a triplestore that cannot be reached or answers 5xx is IndexUnavailable (503 with Retry-After),
a query it rejects is QueryError (400), one past its time QueryTimeout (503).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import IO

import httpx
import pyoxigraph as ox

from . import dump, rdf
from .answer import Answer, stream, write_answer
from .config import Config
from .errors import (
    ConfigError,
    FetchError,
    IndexUnavailable,
    InputError,
    QueryError,
    QueryTimeout,
)
from .index import (
    DEFAULT_TIMEOUT,
    TERMS_GRAPH,
    VOCABULARY_GRAPH,
    Index,
    live_annotations,
)
from .push import Pusher
from .served import Calibrations
from .sparqlguard import check_read_only
from .store import Store
from .urls import public_base

log = logging.getLogger(__name__)

RESULTS = "application/sparql-results+json"
TRIPLES = "application/n-triples"
ACCEPT = f"{RESULTS}, {TRIPLES};q=0.9"  # whichever fits the query's kind
REFRESH_WAIT = 10.0  # longest a read waits for the pusher to deliver the changes logged before it
CHUNK = 64 * 1024


class RemoteIndex:
    """An RDFIndex over an external SPARQL 1.1 triplestore; thread-safe."""

    def __init__(self, config: Config, store: Store, *, transport: httpx.BaseTransport | None = None):
        """Raises ConfigError when index_url or push_url is missing."""
        if not config.index_url.startswith(("http://", "https://")):
            raise ConfigError("the remote index needs index_url: the triplestore's SPARQL query endpoint (http or https)",
                              where="index_url")
        if not config.push_url:
            raise ConfigError("the remote index is fed by the pusher: set push_url to the triplestore's Graph Store "
                              "Protocol or SPARQL Update endpoint", where="push_url")
        self.url, self.store, self.base = config.index_url, store, public_base(config.base_url)
        self.timeout = config.sparql_timeout
        self._client = httpx.Client(timeout=config.sparql_timeout, transport=transport)
        self._feeder = Pusher.from_config(config, store)  # never started: the service's own pusher feeds
        self._vocabulary = Index(vocab=config.vocab, base=self.base)  # the vocabulary graphs, in memory
        self._vocabulary.load_vocabulary()
        self._sent = False  # whether the vocabulary graphs went to the triplestore in this process
        self._lock = threading.Lock()

    # ---- keeping up --------------------------------------------------------------------------------

    def refresh(self, store: Store) -> int:
        """Send the vocabulary graphs and the statistics graph once, then wait (up to REFRESH_WAIT) until the pusher has delivered
        every change logged so far, unless its last round failed; return 0 (nothing is applied here)."""
        self._send_vocabulary()
        latest, deadline = store.last_change(), time.monotonic() + REFRESH_WAIT
        while time.monotonic() < deadline:
            cursor = store.cursor(self._feeder.name)
            if cursor.seq >= latest or cursor.failures:
                break
            time.sleep(0.05)
        else:
            log.warning("the pusher to %s lags behind the change log", self._feeder.url)
        return 0

    def _send_vocabulary(self) -> None:
        with self._lock:
            if self._sent:
                return
            graphs = {name: self._triples(name) for name in (VOCABULARY_GRAPH, TERMS_GRAPH)}
            try:
                self._feeder.replace_graphs(graphs)
                self._feeder.restate(self.store)
            except FetchError as exc:  # queries say so themselves; the next read tries again
                log.warning("cannot send the vocabulary to the triplestore: %s", exc)
                return
            self._sent = True

    def _triples(self, graph: str) -> str:
        quads = self._vocabulary.store.quads_for_pattern(None, None, None, ox.NamedNode(graph))
        return ox.serialize((quad.triple for quad in quads), format=ox.RdfFormat.N_TRIPLES).decode("utf-8")

    def follower(self, store: Store, interval: float) -> None:
        """None: the pusher feeds the triplestore."""
        return

    def load(self, url: str) -> int:
        """Fill the triplestore in bulk, as an instance moving up does once: every quad the dump holds
        (the vocabulary, each live annotation as served) POSTed in one N-Quads stream to URL, its endpoint
        that takes a whole dataset (Oxigraph's ``/store``, Fuseki's ``/DATASET/data``); then the pusher's
        position set to where the change log ended before the dump began, so it sends only what came
        after (sending a change the dump already held again changes nothing). Return that position.

        Raises IndexUnavailable (the load failed).
        """
        position = self.store.last_change()
        try:
            response = self._client.post(url, content=dump.quads(self), headers={"Content-Type": "application/n-quads"},
                                         timeout=httpx.Timeout(60, read=None, write=None))
        except httpx.HTTPError as exc:
            raise IndexUnavailable(f"the triplestore cannot be reached: {exc}", where=url) from None
        if response.status_code >= 300:
            raise IndexUnavailable(f"the triplestore refused the load: {response.status_code}: {response.text[:500]}",
                                   where=url)
        self.store.move_cursor(self._feeder.name, position)
        return position

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
        self._feeder.close()

    # ---- SPARQL ------------------------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        accept: str | None = None,
        format: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        default_graphs: Sequence[str] = (),
        named_graphs: Sequence[str] = (),
        where: str | None = None,
        max_rows: int = 0,
        max_triples: int = 0,
    ) -> Answer:
        """Run a read-only SPARQL query on the triplestore and serialize its answer as ACCEPT or FORMAT
        asks, as enricher.index.Index.query does.

        Raises UpdateRefused, QueryError, NotAcceptable, ResultTooLarge, QueryTimeout, IndexUnavailable.
        """
        check_read_only(sparql, where)
        form = [("query", sparql), *(("default-graph-uri", g) for g in default_graphs),
                *(("named-graph-uri", g) for g in named_graphs)]
        write = partial(self._write, form, accept, format, where, (max_rows, max_triples))
        return stream(lambda output: self._request(form, timeout, where, partial(write, output)), timeout, where)

    def _request(self, form, timeout, where, read):
        """POST FORM to the query endpoint and hand the streamed response to READ(response, stream)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._client.stream("POST", self.url, data=_grouped(form), headers={"Accept": ACCEPT},
                                     timeout=timeout) as response:
                if response.status_code >= 300:
                    _fail(response, where)
                return read(response, _Stream(response.iter_bytes(CHUNK), deadline, where))
        except httpx.TimeoutException:
            raise QueryTimeout(f"the query ran longer than {timeout} s", where=where) from None
        except httpx.HTTPError as exc:
            raise IndexUnavailable(f"the triplestore cannot be reached: {exc}", where=where) from None

    def _write(self, form, accept, format_param, where, caps, output, response, stream) -> None:
        """Write the triplestore's answer to OUTPUT as it comes, re-serialized (enricher.answer.write_answer)."""
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in (TRIPLES, RESULTS):
            raise IndexUnavailable(f"the triplestore answered {media_type or 'untyped'}, not {ACCEPT}", where=where)

        def recount(read):
            return self._request(form, self.timeout, where, lambda _, again: read(_solutions(again)))

        try:
            result = ox.parse(stream, format=ox.RdfFormat.N_TRIPLES) if media_type == TRIPLES else _solutions(stream)
            write_answer(result, output, accept=accept, format_param=format_param, caps=caps, where=where,
                         recount=recount)
        except (SyntaxError, ValueError, OSError) as exc:  # an answer cut short or malformed
            raise IndexUnavailable(f"the triplestore's answer cannot be read: {exc}", where=where) from None

    # ---- the dataset -------------------------------------------------------------------------------

    def write_dump(self, output: IO[bytes], format: str) -> None:
        """Write every quad from the store (the vocabulary and the statistics graph, then each live
        annotation as served): ``nquads`` with one graph per annotation, or ``ntriples`` with the graphs merged."""
        self._vocabulary.restate(self.store)
        self._vocabulary.write_dump(output, format)
        graph = "" if format == "nquads" else None  # "": the graph named by the annotation's id
        served = Calibrations(self.store, self.base).document if self.base else (lambda stored: stored.document)
        for annotation in live_annotations(self.store, served):
            try:
                output.write(rdf.annotation_nquads(annotation, graph).encode("utf-8"))
            except InputError as exc:
                log.warning("annotation %s left out of the dump: %s", annotation.get("id"), exc)


class _Stream(io.RawIOBase):
    """A response body as a binary file for pyoxigraph's parsers, ending the query at its deadline."""

    def __init__(self, chunks: Iterator[bytes], deadline: float | None, where: str | None):
        self.chunks, self.deadline, self.where, self.left = chunks, deadline, where, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.left:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise QueryTimeout("the query ran past its time limit", where=self.where)
            self.left = next(self.chunks, b"")
        size = min(len(buffer), len(self.left))
        buffer[:size], self.left = self.left[:size], self.left[size:]
        return size


def _solutions(stream: IO[bytes]) -> ox.QuerySolutions:
    return ox.parse_query_results(stream, format=ox.QueryResultsFormat.JSON)


def _grouped(form: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in form:
        grouped.setdefault(name, []).append(value)
    return grouped


def _fail(response: httpx.Response, where: str | None) -> None:
    """Raise the error a triplestore's failed answer means: QueryError for a query it rejects (4xx),
    IndexUnavailable otherwise."""
    response.read()
    detail = f"{response.status_code}: {response.text[:500]}"
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise QueryError(f"the triplestore rejected the query: {detail}", where=where)
    raise IndexUnavailable(f"the triplestore failed: {detail}", where=where)

