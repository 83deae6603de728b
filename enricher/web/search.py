"""IIIF Content Search 1.0 and 2.0 of each enriched manifest, with autocomplete (enricher.contentsearch
builds the answers): ``/{key}/search/{1,2}`` and ``/{key}/autocomplete/{1,2}``."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import contentsearch, urls
from ..search import lexicon
from .annotations import find_stored
from .media import dumps, send
from .state import service

bp = Blueprint("search", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS"}
MEDIA = {1: f'application/ld+json; profile="{contentsearch.SEARCH1_CONTEXT}"',
         2: f'application/ld+json; profile="{contentsearch.SEARCH2_CONTEXT}"'}


@bp.get("/<key:key>/search/<int(min=1, max=2):version>")
def search(key: str, version: int) -> Response:
    """Annotations of manifest KEY whose concepts or text match ``q`` (Content Search VERSION).

    Raises NotFound for an unknown manifest, InputError for a bad page, ConfigError for a vocabulary
    file that cannot be read.
    """
    find_stored(key)
    query = contentsearch.read_query(request.args)
    found = contentsearch.search(service().store(), lexicon(service().config.vocab), key, query)
    url = urls.search_url(service().base, key, version)
    build = contentsearch.search1 if version == 1 else contentsearch.search2
    return send(dumps(build(url, query, found)), MEDIA[version], headers=HEADERS)


@bp.get("/<key:key>/autocomplete/<int(min=1, max=2):version>")
def autocomplete(key: str, version: int) -> Response:
    """Terms starting with ``q`` that a search of manifest KEY finds, with counts (Content Search VERSION).

    Raises NotFound for an unknown manifest, ConfigError for a vocabulary file that cannot be read.
    """
    find_stored(key)
    query = contentsearch.read_query(request.args)
    offered = contentsearch.complete(service().store(), lexicon(service().config.vocab), key, query)
    url, search_url = (urls.autocomplete_url(service().base, key, version), urls.search_url(service().base, key, version))
    build = contentsearch.terms1 if version == 1 else contentsearch.terms2
    return send(dumps(build(url, search_url, query, offered)), MEDIA[version], headers=HEADERS)
