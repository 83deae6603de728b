"""Turtle on request: the JSON-LD we serve, converted offline (pyld with local contexts, pyoxigraph).

Containers name the LDP context ``http://www.w3.org/ns/ldp.jsonld`` as the protocol's examples do;
``contexts/ldp.jsonld`` is a local copy of it, served to pyld next to the contexts enricher.jsonld knows.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import FetchError, InputError
from ..jsonld import ENRICHER_NS, Loader, document_loader

LDP_CONTEXT = "http://www.w3.org/ns/ldp.jsonld"
LDP_FILE = Path(__file__).parent / "contexts" / "ldp.jsonld"
PREFIXES = {
    "oa": "http://www.w3.org/ns/oa#",
    "as": "http://www.w3.org/ns/activitystreams#",
    "ldp": "http://www.w3.org/ns/ldp#",
    "dcterms": "http://purl.org/dc/terms/",
    "dctypes": "http://purl.org/dc/dcmitype/",
    "schema": "https://schema.org/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "enricher": ENRICHER_NS,
}


@lru_cache(maxsize=None)
def loader(conformance_dir: str) -> Loader:
    """Return a pyld document loader for every context we emit, LDP's included; nothing goes online."""
    known = document_loader(conformance_dir)
    ldp = json.loads(LDP_FILE.read_text(encoding="utf-8"))

    def load(url: str, options: dict | None = None) -> dict:
        if url.split("://", 1)[-1] == LDP_CONTEXT.split("://", 1)[-1]:
            return {"contextUrl": None, "documentUrl": url, "document": ldp}
        return known(url, options)

    return load


def to_nquads(document: dict, conformance_dir: str) -> str:
    """Convert a JSON-LD document to N-Quads offline.

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


def to_turtle(document: dict, conformance_dir: str) -> bytes:
    """Serialise a JSON-LD document as Turtle (default graph; our documents have no named graphs).

    Raises what to_nquads raises.
    """
    import pyoxigraph as ox

    quads = ox.parse(to_nquads(document, conformance_dir).encode("utf-8"), format=ox.RdfFormat.N_QUADS)
    triples = [ox.Triple(q.subject, q.predicate, q.object) for q in quads]
    return ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=PREFIXES)

