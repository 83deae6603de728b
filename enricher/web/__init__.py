"""The HTTP service. ``create_app`` builds the Flask app from settings; nothing happens at import time.

Surfaces, one blueprint each: ``annotations`` (W3C Web Annotation Protocol), ``iiif`` (enriched
manifests, pages, lists), ``layers`` (the verified-only manifest and the layers' collections),
``jobs``, ``runs`` (jobs' runs as PROV-O), ``openapi`` (the service description, /openapi.json and our
JSON-LD context), ``sparql`` (the SPARQL 1.1 endpoint), ``activity`` (IIIF Change Discovery),
``dataset`` (VoID, dumps, the vocabulary and our terms), ``search`` (IIIF Content Search 1.0 and 2.0)
and ``oai`` (OAI-PMH, EDM records and the Europeana Annotations API profile, for aggregators).
``problems`` renders every error. Reads are public and open to any origin (CORS); writes need a bearer
token (see ``auth``) and are rate-limited per client and token (``limits``). With setting ``push_url``
the app pushes every change to an external
triplestore (one process per database).
"""

from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, Response, request
from werkzeug.routing import BaseConverter

from ..config import load_config
from . import (
    activity,
    annotations,
    dataset,
    evaluations,
    iiif,
    jobs,
    layers,
    limits,
    oai,
    openapi,
    problems,
    review,
    runs,
    search,
    sparql,
    verdicts,
)
from .state import Service

EXPOSED = ("Allow, Content-Location, ETag, Link, Location, Vary, Accept-Post, Preference-Applied, WWW-Authenticate, "
           "Retry-After")
REQUEST_HEADERS = "Accept, Authorization, Content-Type, If-Match, If-None-Match, Prefer"
PREFLIGHT_MAX_AGE = "86400"


class KeyConverter(BaseConverter):
    """A manifest key: 16 lowercase hex digits."""

    regex = "[0-9a-f]{16}"


def _cors(response: Response) -> Response:
    """Let pages on any origin read every response, and answer preflights."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "GET, HEAD, OPTIONS")
        response.headers["Access-Control-Allow-Headers"] = REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from settings (OVERRIDES over ENRICHER_* env vars over the settings file)."""
    config = load_config(overrides)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.url_map.converters["key"] = KeyConverter
    app.extensions["enricher"] = Service(config, page_builder=annotations.materialized_pages)
    problems.init_app(app)
    limits.init_app(app)
    for surface in (openapi, annotations, iiif, layers, jobs, runs, sparql, activity, dataset, review, verdicts,
                    evaluations, search, oai):
        app.register_blueprint(surface.bp)
    app.after_request(_cors)
    jobs.init_app(app)
    app.extensions["enricher"].start_push()
    return app
