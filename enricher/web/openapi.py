"""What the service says about itself: the description at ``/`` (links to everything, the linked data
included), the OpenAPI 3.1 document at ``/openapi.json`` (from ``openapi.yaml``) and our JSON-LD
context at ``/context.jsonld``."""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response

from .. import __version__, dump, urls
from ..datafiles import OPENAPI_FILE
from ..jsonld import ENRICHER_CONTEXT, OWN_CONTEXTS
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
            "openapi": urls.openapi_url(here.base),
            "annotations": urls.container_url(here.base, None),
            "jobs": urls.jobs_url(here.base),
            "context": urls.context_url(here.base),
            "terms": urls.terms_url(here.base),
            "vocabulary": urls.vocabulary_url(here.base),
            "sparql": urls.sparql_url(here.base),
            "void": urls.void_url(here.base),
            "dumps": [urls.dump_url(here.base, extension) for extension in dump.FORMATS.values()],
            "changes": urls.activity_collection_url(here.base),
        },
        "manifests": [
            {
                "key": m.key,
                "label": m.label,
                "source": m.url,
                "manifest": urls.manifest_url(here.base, m.key),
                "annotations": urls.container_url(here.base, m.key),
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
