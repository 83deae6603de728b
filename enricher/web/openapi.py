"""What the service says about itself: the description at ``/`` (links to everything, the linked data
included), the OpenAPI 3.1 document at ``/openapi.json`` (from ``openapi.yaml``) and our JSON-LD
context at ``/context.jsonld``."""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response

from .. import __version__, discovery, dump
from ..datafiles import OPENAPI_FILE
from ..jsonld import OWN_CONTEXTS, ENRICHER_CONTEXT
from .media import JSON, dumps, etag_of, file_bytes, send
from .state import service

bp = Blueprint("openapi", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS"}


@lru_cache(maxsize=None)
def spec() -> dict:
    """The OpenAPI document, read once."""
    import yaml

    return yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))


def description() -> dict:
    """The service description: version, entry points and every enriched manifest."""
    here = service()
    return {
        "name": "enricher",
        "version": __version__,
        "links": {
            "openapi": f"{here.base}openapi.json",
            "annotations": here.container(None),
            "jobs": f"{here.base}jobs",
            "context": f"{here.base}context.jsonld",
            "terms": f"{here.base}ns",
            "vocabulary": f"{here.base}vocab",
            "sparql": f"{here.base}sparql",
            "void": dump.void_url(here.base),
            "dumps": [dump.dump_url(here.base, name) for name in dump.FORMATS],
            "changes": discovery.collection_url(here.base),
        },
        "manifests": [
            {
                "key": m.key,
                "label": m.label,
                "source": m.url,
                "manifest": here.manifest(m.key),
                "annotations": here.container(m.key),
            }
            for m in here.store().manifests()
        ],
    }


@bp.get("/")
def root() -> Response:
    """The service description."""
    return send(dumps(description()), JSON, headers=HEADERS)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document, its server set to the public base URL."""
    body = dumps({**spec(), "servers": [{"url": service().base}]})
    return send(body, JSON, headers=HEADERS, etag=etag_of(body))


@bp.get("/context.jsonld")
def context() -> Response:
    """Our JSON-LD context, the document https://w3id.org/enricher/context.jsonld redirects to."""
    body = file_bytes(OWN_CONTEXTS[ENRICHER_CONTEXT])
    return send(body, "application/ld+json", headers=HEADERS, etag=etag_of(body))
