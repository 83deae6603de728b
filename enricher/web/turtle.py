"""RDF on request (Turtle and every other format of enricher.rdf's registry): the JSON-LD we serve as
the triples it means, converted offline.

Annotations go through enricher.rdf's direct reader; containers and pages (whose terms it does not
read) through pyld with local contexts, the annotations a container page embeds through the direct
reader again (pyld costs milliseconds per annotation). Containers name the LDP context
``http://www.w3.org/ns/ldp.jsonld`` as the protocol's examples do; ``contexts/ldp.jsonld`` is a local
copy of it, served to pyld next to the contexts enricher.jsonld knows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache

import pyoxigraph as ox

from .. import rdf
from ..datafiles import LDP_CONTEXT_FILE
from ..errors import FetchError, InputError
from ..jsonld import Loader, document_loader

LDP_CONTEXT = "http://www.w3.org/ns/ldp.jsonld"


@lru_cache(maxsize=None)
def loader(conformance_dir: str) -> Loader:
    """Return a pyld document loader for every context we emit, LDP's included; nothing goes online."""
    known = document_loader(conformance_dir)
    ldp = json.loads(LDP_CONTEXT_FILE.read_text(encoding="utf-8"))

    def load(url: str, options: dict | None = None) -> dict:
        if url.split("://", 1)[-1] == LDP_CONTEXT.split("://", 1)[-1]:
            return {"contextUrl": None, "documentUrl": url, "document": ldp}
        return known(url, options)

    return load


def to_nquads(document: dict, conformance_dir: str) -> str:
    """Convert a JSON-LD document to N-Quads with pyld, offline.

    Raises FetchError when a context has no local copy, InputError for invalid JSON-LD.
    """
    from pyld import jsonld

    try:
        return jsonld.to_rdf(document, {"documentLoader": loader(conformance_dir), "format": "application/n-quads"})
    except jsonld.JsonLdError as exc:
        cause = exc
        while cause is not None and not isinstance(cause, FetchError):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if cause is not None:
            raise cause from None
        raise InputError(f"invalid JSON-LD: {exc}", where=document.get("id")) from None


def to_quads(document: dict, conformance_dir: str, members: Sequence[dict] = ()) -> list[ox.Quad]:
    """Return the RDF of a document we serve (annotation, container, page, IIIF page or list), plus
    that of MEMBERS: annotations the document names by IRI in place of embedding them, read with the
    annotation context (tests/test_web_rdf.py proves the result isomorphic to the document with them
    embedded). Everything lands in the default graph.

    Raises what to_nquads raises, and InputError for a document that is not valid RDF.
    """
    where = document.get("id") or document.get("@id")
    if document.get("type") == "Annotation":
        quads = rdf.annotation_quads(document, None, conformance_dir)
    else:
        quads = rdf.parse_nquads(to_nquads(document, conformance_dir), where=where)
    for member in members:
        quads.extend(rdf.annotation_quads(member, None, conformance_dir))
    return _stable(dict.fromkeys(quads))  # members on one canvas share its triples: say each once


def _stable(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """QUADS with blank nodes labelled in order of appearance (the readers make labels unique to each
    call), so one version of a resource is always the same bytes, as its strong ETag promises."""
    labels: dict[ox.BlankNode, ox.BlankNode] = {}

    def term(value):
        if isinstance(value, ox.BlankNode):
            return labels.setdefault(value, ox.BlankNode(f"b{len(labels)}"))
        return value

    return [ox.Quad(term(q.subject), q.predicate, term(q.object), q.graph_name) for q in quads]
