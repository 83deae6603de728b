"""Offline JSON-LD processing: serve the contexts our output names from local files, never the network.

Output is built as plain dicts (annotate.py); this module is for tests, the RDF index and checks,
not the hot path (pyld expansion costs about a hundred times the dict building).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .datafiles import CONTEXTS_DIR
from .errors import FetchError, InputError

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
IIIF3_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
IIIF2_CONTEXT = "http://iiif.io/api/presentation/2/context.json"
ENRICHER_CONTEXT = "https://w3id.org/enricher/context.jsonld"
ENRICHER_NS = "https://w3id.org/enricher/ns#"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
# Ours, plus the IIIF contexts that the Presentation 3 context names in scoped definitions but the
# shared conformance folder lacks (pyld resolves scoped contexts eagerly, so all must be there).
OWN_CONTEXTS = {
    ENRICHER_CONTEXT: CONTEXTS_DIR / "enricher.jsonld",
    "http://iiif.io/api/image/1/context.json": CONTEXTS_DIR / "iiif-image-1-context.jsonld",
    "http://iiif.io/api/auth/1/context.json": CONTEXTS_DIR / "iiif-auth-1-context.jsonld",
    "https://iiif.io/api/registry/selectors/context.json": CONTEXTS_DIR / "iiif-selectors-context.jsonld",
}

# Official URL -> file in the conformance ``contexts/`` folder (the table in its README).
SHARED_CONTEXTS = {
    ANNO_CONTEXT: "w3c-anno.jsonld",
    IIIF3_CONTEXT: "iiif-presentation-3-context.json",
    IIIF2_CONTEXT: "iiif-presentation-2-context.json",
    "http://iiif.io/api/image/3/context.json": "iiif-image-3-context.json",
    "http://iiif.io/api/image/2/context.json": "iiif-image-2-context.json",
    "http://iiif.io/api/discovery/1/context.json": "iiif-discovery-1-context.json",
    "http://iiif.io/api/annex/openannotation/context.json": "iiif-annex-openannotation-context.json",
    "http://iiif.io/api/search/1/context.json": "iiif-search-1-context.json",
    "http://iiif.io/api/search/2/context.json": "iiif-search-2-context.json",
}

Loader = Callable[..., dict]


def as_list(value: Any) -> list:
    """A JSON-LD value as a list: a list as it is, nothing as [], one value as [value]."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _key(url: str) -> str:
    # Documents name the same context with http and https; both mean one file.
    return url.split("://", 1)[-1]


@lru_cache(maxsize=None)
def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def context_files(conformance_dir: str | Path | None) -> dict[str, Path]:
    """Map each known context URL to its local file: ours from the package, the official ones from
    ``conformance_dir`` when it has them, else from the copies in the package."""
    folder = Path(conformance_dir) / "contexts" if conformance_dir else None
    files = {
        # a deployed service has no conformance folder: it uses the copies shipped in the package
        _key(url): folder / name if folder and (folder / name).is_file() else CONTEXTS_DIR / name
        for url, name in SHARED_CONTEXTS.items()
    }
    files.update({_key(url): path for url, path in OWN_CONTEXTS.items()})
    return files


def document_loader(conformance_dir: str | Path | None) -> Loader:
    """Return a pyld document loader that reads known contexts locally and refuses every other URL.

    Raises FetchError (wrapped by pyld) for an unknown URL or a missing local copy.
    """
    files = context_files(conformance_dir)

    def load(url: str, options: dict | None = None) -> dict:
        path = files.get(_key(url))
        if path is None:
            raise FetchError("JSON-LD document not available offline", where=url)
        if not path.is_file():
            raise FetchError(f"no local copy of this context at {path} (setting conformance_dir)", where=url)
        return {"contextUrl": None, "documentUrl": url, "document": _read(path)}

    return load


def _run(operation: str, document: dict | list, conformance_dir: str | Path | None, **options: Any) -> Any:
    from pyld import jsonld

    options["documentLoader"] = document_loader(conformance_dir)
    try:
        return getattr(jsonld, operation)(document, options)
    except jsonld.JsonLdError as exc:
        cause = exc
        while cause is not None and not isinstance(cause, FetchError):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if cause is not None:
            raise cause from None
        where = document.get("id") or document.get("@id") if isinstance(document, dict) else None
        raise InputError(f"invalid JSON-LD: {exc}", where=where) from None


def to_nquads(document: dict | list, conformance_dir: str | Path | None) -> str:
    """Convert a JSON-LD document to N-Quads offline."""
    return _run("to_rdf", document, conformance_dir, format="application/n-quads")


def to_graph(document: dict | list, conformance_dir: str | Path | None):
    """Convert a JSON-LD document offline to an rdflib Graph (named graphs merged into it).

    rdflib's own JSON-LD parser fetches remote contexts itself, so pyld (which takes a loader)
    does the JSON-LD part; blank nodes are fresh in every call, so graphs can be merged safely.
    """
    from rdflib import BNode, Graph, Literal, URIRef

    blanks: dict[str, BNode] = {}

    def term(node: dict):
        if node["type"] == "IRI":
            return URIRef(node["value"])
        if node["type"] == "blank node":
            return blanks.setdefault(node["value"], BNode())
        if "language" in node:
            return Literal(node["value"], lang=node["language"])
        # N-Triples leaves xsd:string out, and so do rdflib's parsers; match them
        datatype = None if node.get("datatype") == XSD_STRING else URIRef(node["datatype"])
        return Literal(node["value"], datatype=datatype)

    graph = Graph()
    for triples in _run("to_rdf", document, conformance_dir).values():
        for triple in triples:
            graph.add((term(triple["subject"]), term(triple["predicate"]), term(triple["object"])))
    return graph
