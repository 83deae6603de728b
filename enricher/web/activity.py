"""IIIF Change Discovery 1.0 for harvesters: the OrderedCollection of every change at
``/activity/all-changes`` and its pages of Create, Update and Delete activities, oldest first (built
by enricher.discovery on the store's change log). Every page states the licence of the data."""

from __future__ import annotations

from flask import Blueprint, Response

from .. import discovery
from .media import dumps, etag_of, send
from .state import service

bp = Blueprint("activity", __name__)


def licensed(document: dict) -> dict:
    """DOCUMENT with the licence of the published annotations as its ``rights``."""
    return {**document, "rights": service().config.licence}


def _send(document: dict) -> Response:
    body = dumps(document)
    headers = {"Allow": "GET, HEAD, OPTIONS", "Link": f'<{service().config.licence}>; rel="license"'}
    return send(body, discovery.MEDIA_TYPE, headers=headers, etag=etag_of(body))


@bp.get("/activity/all-changes")
def changes() -> Response:
    """The OrderedCollection of every change, with its first and last page."""
    here = service()
    return _send(discovery.collection(here.discovered(), here.base, here.config.activity_page_size,
                                      rights=here.config.licence))


@bp.get("/activity/page-<int:n>")
def changes_page(n: int) -> Response:
    """Page N of the changes (a page with ``next`` never changes again)."""
    here = service()
    return _send(licensed(discovery.page(here.discovered(), here.base, n, here.config.activity_page_size)))
