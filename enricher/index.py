"""The RDF index: a pyoxigraph store derived from the system of record (store.py) that answers
SPARQL; dump.py streams it as the full dump (VoID counts from the store, enricher.dump.void).

Layout: one named graph per annotation, named by the annotation's IRI, so an update or a delete
replaces exactly that annotation (curators' verdicts too: they are annotations); the vocabulary
(vocab/coco.ttl, the verdict scheme vocab/verdicts.ttl, the evaluation metrics vocab/metrics.ttl
and extra mapping files: SKOS concepts, labels
in several languages, Iconclass ``skos:broader`` chains) in VOCABULARY_GRAPH and
our own terms (contexts/ns.ttl) in TERMS_GRAPH. Queries see the union of all graphs as their
default graph, so nobody needs GRAPH clauses. Annotations are indexed as served: with the calibrated
confidence of their model on their collection and the calibration named (enricher.served.Calibrations),
when the index knows the public base URL the calibrations are named under; a new calibration logs an
Update for each annotation it changes, so the index follows.

The index follows the store's change log: ``refresh(store)`` applies what changed since the last
call (one SQLite query when nothing did), so every query sees every committed write. ``Index()``
is in memory; ``Index(path)`` on disk, for one process, its change-log position in ``{path}.seq``
(enricher.shared_index shares one on disk between processes).

Errors (enricher.errors): QueryError and UpdateRefused (400), ResultTooLarge (422), QueryTimeout (503).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pyoxigraph as ox

from . import rdf
from .answer import Answer, stream, write_answer
from .datafiles import (
    COCO_VOCABULARY,
    METRICS_VOCABULARY,
    TERMS_FILE,
    VERDICT_VOCABULARY,
)
from .errors import (
    EnricherError,
    InputError,
    QueryError,
    QueryTimeout,
)
from .follow import FollowerThread, follow
from .produced import Pipe
from .served import Calibrations
from .sparqlguard import check_read_only
from .statistics import STATISTICS_GRAPH, stated, statistics_ntriples
from .vocab import loaded

if TYPE_CHECKING:
    from .store import Change, ClassCount, Store, StoredAnnotation

log = logging.getLogger(__name__)

VOCABULARY_GRAPH = "https://w3id.org/enricher/vocabulary"
TERMS_GRAPH = "https://w3id.org/enricher/ns"
BATCH = 1000  # annotations per bulk load and per change-log read
OVERLAP = 50  # rows each page of a build re-reads, in case writers deleted some meanwhile
DEFAULT_TIMEOUT = 30.0
QUERY_SLOTS = 4  # queries evaluated at once; a query that timed out keeps its slot until it ends


def _ntriples(annotation: dict) -> str:
    return rdf.annotation_nquads(annotation, None)


class Index:
    """The RDF index over the store; thread-safe."""

    def __init__(
        self, path: str | Path | None = None, *, vocab: Sequence[str | Path] = (), slots: int = QUERY_SLOTS,
        base: str | None = None,
    ):
        """BASE is the public base URL (ending in a slash); without it annotations are indexed as stored,
        without calibrated confidence."""
        self.path = Path(path) if path else None
        self.base = base
        self.vocab = [COCO_VOCABULARY, VERDICT_VOCABULARY, METRICS_VOCABULARY, *map(Path, vocab)]
        self.mappings = vocab  # the extra mapping files, which name the classes' concepts
        self.store = self._open()
        self.seq = self._read_seq()
        self._lock = threading.RLock()
        self._checked = False
        self._closed = False
        self._slots = threading.BoundedSemaphore(slots)
        self._running = 0
        self._counter = threading.Lock()  # not _lock: counting must not wait for a sync

    def _open(self) -> ox.Store | None:
        try:
            return ox.Store(str(self.path)) if self.path else ox.Store()
        except OSError as exc:  # RocksDB: another process holds it, or it is not an index
            raise EnricherError(f"cannot open the RDF index: {exc}", where=str(self.path)) from None

    def _reading(self) -> AbstractContextManager[ox.Store]:
        """The pyoxigraph store queries read, for as long as the context lasts."""
        return nullcontext(self.store)

    def _writing(self) -> AbstractContextManager[ox.Store]:
        """The pyoxigraph store changes are written to, for as long as the context lasts."""
        return nullcontext(self.store)

    def close(self) -> None:
        """Refuse further queries and flush an on-disk index."""
        self._closed = True
        if self.path:
            self.store.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ---- keeping up with the store ----------------------------------------------------------------

    def build(self, source: Store | Iterable[dict]) -> int:
        """Rebuild everything from SOURCE (a Store, or annotation dicts): vocabulary, then every
        live annotation, bulk-loaded; with a Store, changes made meanwhile are applied after.

        Returns how many annotations were loaded. Annotations that are not valid RDF are skipped
        with a warning naming them.
        """
        with self._lock:
            mark = _last_seq(source) if _is_store(source) else 0
            self.store.clear()
            self.load_vocabulary()
            annotations = live_annotations(source, self._served(source)) if _is_store(source) else iter(source)
            loaded = 0
            while batch := list(islice(annotations, BATCH)):
                loaded += self._bulk(batch)
            if _is_store(source):
                self.restate(source)
            if self.path:
                self.store.optimize()
            self._set_seq(mark)
            self._checked = True
            if _is_store(source):
                self.sync(source)
            return loaded

    def load_vocabulary(self) -> None:
        """(Re)load the vocabulary files and our terms into their graphs."""
        with self._lock:
            for graph, files in ((VOCABULARY_GRAPH, self.vocab), (TERMS_GRAPH, [TERMS_FILE])):
                self.store.remove_graph(ox.NamedNode(graph))
                for path in files:
                    try:
                        self.store.load(path=str(path), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(graph))
                    except (OSError, SyntaxError) as exc:
                        raise EnricherError(f"cannot load vocabulary into the index: {exc}", where=str(path)) from None

    def _bulk(self, annotations: list[dict]) -> int:
        texts = [(a, _checked_nquads(a)) for a in annotations]
        texts = [(a, t) for a, t in texts if t is not None]
        try:
            self.store.bulk_load("".join(t for _, t in texts).encode("utf-8"), ox.RdfFormat.N_QUADS)
            return len(texts)
        except SyntaxError:  # an IRI RDF forbids, somewhere in the batch: load one by one
            loaded = 0
            for annotation, text in texts:
                try:
                    self.store.load(text.encode("utf-8"), ox.RdfFormat.N_QUADS)
                    loaded += 1
                except SyntaxError as exc:
                    log.warning("annotation %s is not valid RDF, left out of the index: %s", annotation.get("id"), exc)
            return loaded

    def put(self, annotations: Iterable[dict]) -> None:
        """Make the index hold ANNOTATIONS as given, each replacing its graph, in one transaction.

        Raises InputError for an annotation without an absolute id or that is not valid RDF.
        """
        self._replace({a.get("id"): a for a in annotations}, removed=())

    def remove(self, anno_ids: Iterable[str]) -> None:
        """Drop these annotations from the index (one transaction)."""
        self._replace({}, removed=anno_ids)

    def _replace(self, current: Mapping[str, dict], removed: Iterable[str]) -> None:
        graphs = [*current, *removed]
        if not graphs:
            return
        for name in graphs:
            if not isinstance(name, str) or not rdf.is_iri(name):
                raise InputError("an annotation needs an absolute IRI as id", where=str(name))
        drops = " ;\n".join(f"DROP SILENT GRAPH <{name}>" for name in graphs)
        inserts = "\n".join(f"GRAPH <{name}> {{\n{_ntriples(a)}}}" for name, a in current.items())
        update = f"{drops} ;\nINSERT DATA {{\n{inserts}\n}}" if inserts else drops
        with self._lock, self._writing() as store:
            try:
                store.update(update)
            except SyntaxError as exc:
                raise InputError(f"an annotation is not valid RDF: {exc}", where=", ".join(current)) from None

    name = "index"

    def position(self, store: Store) -> int:
        """The change-log position the index holds (a change-log consumer, enricher.follow)."""
        return self.seq

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Apply change-log entries and move the position past them: each named annotation takes its
        current state in STORE (live: replaced, deleted or gone: removed), so applying an entry twice
        changes nothing."""
        with self._lock:
            self._apply(store, changes)

    def _apply(self, store: Store, changes: Sequence[Change]) -> None:
        current: dict[str, dict] = {}
        removed: list[str] = []
        served = self._served(store)
        for anno_id in dict.fromkeys(change.anno_id for change in changes):
            stored = store.get(anno_id)
            if stored is None or stored.deleted:
                removed.append(anno_id)
            else:
                current[anno_id] = served(stored)
        try:
            self._replace(current, removed)
        except InputError as exc:  # one bad annotation must not stop the others
            log.warning("%s; applying the changes one by one", exc)
            for anno_id, document in current.items():
                try:
                    self._replace({anno_id: document}, ())
                except InputError as one:
                    log.warning("left out of the index: %s", one)
                    self._replace({}, [anno_id])
            self._replace({}, removed)
        self.restate(store)
        self._set_seq(changes[-1].seq)

    def restate(self, store: Store) -> None:
        """Make the statistics graph (enricher.statistics) hold STORE's class counts, unless it does."""
        self._restate(store.class_counts())

    def _restate(self, counts: list[ClassCount]) -> None:
        with self._lock, self._writing() as writer:
            if stated(writer) == set(counts):
                return
            graph = f"<{STATISTICS_GRAPH}>"
            triples = statistics_ntriples(counts, loaded(self.mappings))
            writer.update(f"DROP SILENT GRAPH {graph} ;\nINSERT DATA {{ GRAPH {graph} {{\n{triples}}} }}")

    def _served(self, store: Store) -> Callable[[StoredAnnotation], dict]:
        """How a stored annotation is indexed: as served (with its calibration) when BASE is known."""
        if self.base is None:
            return lambda stored: stored.document
        return Calibrations(store, self.base).document

    def sync(self, store: Store) -> int:
        """Apply every change logged since the last sync; return how many entries were applied."""
        with self._lock:
            return follow(store, self, BATCH)

    def refresh(self, store: Store) -> int:
        """Bring the index up to date with STORE: on first use build it when it is empty or was made
        from another database (its position is past the log's end), then sync. Call before a query."""
        with self._lock:
            if not self._checked:
                self._checked = True
                if self.seq == 0 or self.seq > _last_seq(store):
                    self.build(store)
                    return 0
                self.restate(store)  # an index made before the statistics graph was, or left behind
            return self.sync(store)

    def _read_seq(self) -> int:
        if self.path is None:
            return 0
        try:
            return int(self._seq_file().read_text())
        except (OSError, ValueError):
            return 0

    def _set_seq(self, seq: int) -> None:
        self.seq = seq
        if self.path:  # after the data: a crash in between re-applies changes, which is harmless
            self.store.flush()
            temporary = self._seq_file().with_suffix(".tmp")
            temporary.write_text(str(seq))
            temporary.replace(self._seq_file())

    def _seq_file(self) -> Path:
        return self.path.with_name(self.path.name + ".seq")

    # ---- SPARQL -------------------------------------------------------------------------------------

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
        """Run a read-only SPARQL query and serialize its answer as ACCEPT or FORMAT asks: SELECT and
        ASK as JSON, XML, CSV or TSV; CONSTRUCT and DESCRIBE in an RDF format of rdf.FORMATS.
        DEFAULT_GRAPHS and NAMED_GRAPHS are the protocol's default-graph-uri and named-graph-uri
        (none: every graph is the default graph). WHERE is the URL named in errors. A SELECT may
        answer at most MAX_ROWS rows, a CONSTRUCT or DESCRIBE at most MAX_TRIPLES triples (0: any);
        the evaluation stops at the first one past the cap. The answer streams (enricher.answer): it is
        returned once its first chunk is written, and must be written whole within TIMEOUT seconds.

        Raises UpdateRefused, QueryError (malformed, with the parser's message; SERVICE),
        NotAcceptable, ResultTooLarge (past MAX_ROWS or MAX_TRIPLES), QueryTimeout (past TIMEOUT
        seconds, or every slot busy that long); past the first chunk, reading the answer raises them.
        pyoxigraph cannot stop a running query: one that timed out runs on in its slot until its next
        write, so at most QUERY_SLOTS run at once and later ones wait for a free slot within their timeout.
        """
        check_read_only(sparql, where)
        if not self._slots.acquire(timeout=timeout):
            raise QueryTimeout(f"every query slot stayed busy for {timeout} s; try again later", where=where)
        if self._closed:
            self._slots.release()
            raise EnricherError("the index is closed", where=where)
        self._count(+1)

        def produce(output: Pipe) -> None:
            try:
                self._answer(output, sparql, accept, format, default_graphs, named_graphs, where,
                             (max_rows, max_triples))
            finally:
                self._release()

        return stream(produce, timeout, where)  # a daemon thread: one that timed out must not hold up the exit

    @property
    def running(self) -> int:
        """How many queries hold a slot now (timed-out ones included, until they end)."""
        return self._running

    def _count(self, step: int) -> None:
        with self._counter:
            self._running += step

    def _release(self) -> None:
        self._count(-1)
        self._slots.release()

    def _answer(self, output, sparql, accept, format_param, default_graphs, named_graphs, where, caps) -> None:
        with self._reading() as store:  # dropped inside: a shared index's lock must outlive its opening
            self._evaluate(store, output, sparql, accept, format_param, default_graphs, named_graphs, where, caps)
            del store

    def _evaluate(self, store, output, sparql, accept, format_param, default_graphs, named_graphs, where, caps) -> None:
        options: dict = {"use_default_graph_as_union": not default_graphs}
        try:
            if default_graphs:
                options["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
            if named_graphs:
                options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
            result = store.query(sparql, **options)
        except SyntaxError as exc:
            raise QueryError(f"malformed query: {exc}", where=where) from None
        except ValueError as exc:  # a default-graph-uri or named-graph-uri that is not an IRI
            raise QueryError(f"not a graph IRI: {repr(str(exc))[1:-1]}", where=where) from None  # the code point escaped
        try:
            write_answer(result, output, accept=accept, format_param=format_param, caps=caps, where=where,
                         recount=lambda read: read(store.query(sparql, **options)))
        except (OSError, ValueError) as exc:  # evaluation errors surface while results are written
            raise QueryError(f"the query failed: {exc}", where=where) from None

    # ---- the dataset ----------------------------------------------------------------------

    def write_dump(self, output, format: str) -> None:
        """Write every quad to OUTPUT (a binary file) from one snapshot: ``nquads`` with one graph per
        annotation, or ``ntriples`` with the graphs merged."""
        with self._reading() as store:
            write_dump(store, output, format)

    def follower(self, store: Store, interval: float) -> FollowerThread:
        """The thread that applies STORE's change log to this index every INTERVAL seconds between reads."""
        return FollowerThread(store, self, interval=interval)


def write_dump(store: ox.Store, output, format: str) -> None:
    """Write every quad of STORE to OUTPUT from one snapshot (see Index.write_dump)."""
    if format == "nquads":
        store.dump(output, format=ox.RdfFormat.N_QUADS)
    else:  # a snapshot too: the query reads the store as it was when it started
        store.query(UNION, use_default_graph_as_union=True).serialize(output, format=ox.RdfFormat.N_TRIPLES)


UNION = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"  # every graph merged (with use_default_graph_as_union)


def _is_store(source) -> bool:
    return hasattr(source, "changes") and hasattr(source, "page")


def _last_seq(store: Store) -> int:
    """The position of the store's last change-log entry (0 for none)."""
    seq = 0
    while changes := store.changes(seq, 10 * BATCH):
        seq = changes[-1].seq
    return seq


def live_annotations(store: Store, served: Callable[[StoredAnnotation], dict]) -> Iterator[dict]:
    """Every live annotation, then every live verdict, once, in store order (see _walk), as SERVED."""
    yield from map(served, _walk(lambda offset, limit: store.page(None, offset, limit)))
    if store.count(None, "verdict"):
        yield from map(served, _walk(lambda offset, limit: store.page(None, offset, limit, "verdict")))


def _walk(pages: Callable[[int, int], list[StoredAnnotation]]) -> Iterator[StoredAnnotation]:
    """Every live row PAGES(offset, limit) gives, once, in store order, while writers go on: a deletion
    shifts later rows to lower offsets, so each page starts OVERLAP rows early (further if that was not
    enough) and skips rows already seen. Rows deleted or re-created meanwhile are in the change log,
    for sync."""
    last, offset, back = 0, 0, OVERLAP
    while True:
        start = max(offset - back, 0)
        wanted = offset - start + BATCH  # always BATCH rows past the offset, so every page gets further
        page = pages(start, wanted)
        if start and page and page[0].seq > last:
            back *= 2  # more rows vanished before the offset than we stepped back over
            continue
        yield from (stored for stored in page if stored.seq > last)
        if len(page) < wanted:
            return
        last, offset, back = max(last, page[-1].seq), start + len(page), OVERLAP


def _checked_nquads(annotation: dict) -> str | None:
    try:
        return rdf.annotation_nquads(annotation)
    except InputError as exc:
        log.warning("annotation %s left out of the index: %s", annotation.get("id"), exc)
        return None
