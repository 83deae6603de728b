"""The dataset as a whole, for harvesters: the VoID description at ``/void``, the streamed gzip dumps
(``/dump.nq.gz``, ``/dump.nt.gz``), the vocabulary the annotations point into at ``/vocab`` (SKOS:
the COCO classes and their Wikidata and Iconclass concepts), our own terms at ``/ns`` (RDFS/OWL) and
the metrics evaluations measure at ``/metrics`` (DQV).
Each comes in every RDF format of enricher.rdf's registry (Accept or ``format``; Turtle first)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pyoxigraph as ox
from flask import Blueprint, Response

from .. import dump, urls
from ..datafiles import COCO_VOCABULARY, METRICS_VOCABULARY, TERMS_FILE
from ..errors import EnricherError
from .media import VARY, choose_format, etag_of, file_bytes, send
from .state import service

bp = Blueprint("dataset", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": VARY}
GZIP = "application/gzip"


@lru_cache(maxsize=8)
def read_graph(paths: tuple[Path, ...]) -> list[ox.Quad]:
    """The triples of these Turtle files, read once per process.

    Raises EnricherError naming a file that cannot be read or parsed.
    """
    quads = []
    for path in paths:
        try:
            quads.extend(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        except (OSError, SyntaxError) as exc:
            raise EnricherError(f"cannot read this vocabulary file: {exc}", where=str(path)) from None
    return quads


def send_rdf(quads: Sequence[ox.Quad], turtle: bytes | None = None) -> Response:
    """Send QUADS in the RDF format asked for; TURTLE, when given, is sent as the Turtle (a file's own
    text, with its comments).

    Raises NotAcceptable.
    """
    fmt = choose_format()
    body = turtle if turtle is not None and fmt.name == "turtle" else fmt.serialize(quads)
    return send(body, fmt.content_type, headers=HEADERS, etag=etag_of(body))


def send_turtle_file(path: Path) -> Response:
    """Send the Turtle file PATH in the RDF format asked for; as Turtle, the file's own text.

    Raises NotAcceptable, and EnricherError naming a file that cannot be read or parsed.
    """
    return send_rdf(read_graph((path,)), turtle=file_bytes(path))


@bp.get("/void")
def void() -> Response:
    """The VoID description (from the store, not the index): annotations, distinct concepts, class
    partitions, licence, SPARQL endpoint, dumps."""
    here = service()
    return send_rdf(dump.void(here.store(), here.config))


def _dump(name: str) -> Response:
    """Stream the whole dataset in dump format NAME (enricher.dump.FORMATS), gzip-compressed, from
    one snapshot of the index, licence statement first.

    Raises EnricherError when the database or a vocabulary file cannot be read.
    """
    here = service()
    chunks = dump.dump(here.index(), here.store(), here.config, format=name)
    filename = urls.dump_url(here.base, dump.FORMATS[name]).rsplit("/", 1)[1]
    headers = {
        "Allow": "GET, HEAD, OPTIONS",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Link": f'<{here.config.licence}>; rel="license"',
    }
    return Response(chunks, content_type=GZIP, headers=headers)


@bp.get("/dump.nq.gz")
def dump_nquads() -> Response:
    """Every graph as N-Quads: each annotation in its own, the vocabulary and our terms in theirs."""
    return _dump("nquads")


@bp.get("/dump.nt.gz")
def dump_ntriples() -> Response:
    """Every graph merged, as N-Triples."""
    return _dump("ntriples")


@bp.get("/vocab")
def vocabulary() -> Response:
    """The SKOS vocabulary: COCO classes, their concepts, labels and Iconclass broader chains."""
    files = (COCO_VOCABULARY, *map(Path, service().config.vocab))
    return send_rdf(read_graph(files))


@bp.get("/ns")
def terms() -> Response:
    """Our own terms (confidence, model, ...) as RDFS/OWL, the document https://w3id.org/enricher/ns redirects to."""
    return send_turtle_file(TERMS_FILE)


@bp.get("/metrics")
def metrics() -> Response:
    """The metrics, dimensions and terms of our evaluations (DQV, vocab/metrics.ttl): what each
    dqv:QualityMeasurement of /evaluations/{id} measures."""
    return send_turtle_file(METRICS_VOCABULARY)
