"""IIIF endpoints a viewer needs: the enriched manifest, and per canvas a Presentation 3 AnnotationPage
and a Presentation 2.1 AnnotationList, built from the store on each request. Pages and lists come in
every RDF format of enricher.rdf's registry too (Accept or ``format``), as their JSON-LD means them,
with the labels in the language ``lang`` or Accept-Language asks for; ``manifest.json?lang=`` links
pages and lists in that language."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, Response, request

from .. import audience, contentsearch, urls
from ..annotate import annotation_list, annotation_page, enriched_manifest
from ..errors import NotFound
from ..harvest import record_links
from ..manifest import Canvas, Manifest
from ..served import Calibrations
from ..vocab import loaded
from .annotations import find_manifest
from .media import (
    IIIF2_JSONLD,
    IIIF3_JSONLD,
    JSON_TYPES,
    VARY,
    choose_format,
    dumps,
    etag_of,
    send,
    send_graph,
)
from .state import service
from .turtle import to_quads

bp = Blueprint("iiif", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": "Accept-Language"}
GRAPH_HEADERS = {**HEADERS, "Vary": f"{VARY}, Accept-Language"}


def find_canvas(key: str, index: int) -> tuple[Manifest, Canvas]:
    """Return manifest KEY and its canvas at INDEX (0-based).

    Raises NotFound for an unknown manifest or an index past its last canvas.
    """
    manifest = find_manifest(key)
    if index >= len(manifest.canvases):
        count = len(manifest.canvases)
        raise NotFound(f"manifest {key} has {count} canvases; there is no canvas {index}", where=request.url)
    return manifest, manifest.canvases[index]


def language() -> str | None:
    """The language the labels are asked in: ``lang``, else the best of Accept-Language among the
    vocabulary's languages, else None (as stored)."""
    asked = audience.read_language(request.args.get("lang"))
    if asked or "Accept-Language" not in request.headers:
        return asked
    return audience.best_language(request.accept_languages, audience.languages(_vocabulary()))


def _vocabulary():
    return loaded(service().config.vocab)


def live(key: str, canvas: Canvas, layers: Sequence[str] = audience.LAYERS) -> list[dict]:
    """What the public sees on a canvas (each object once, so not what curators rejected or replaced),
    of these LAYERS, labelled in the language asked for."""
    calibrations = Calibrations(service().store(), service().base)
    asked, found = language(), _vocabulary()
    return [audience.relabel(calibrations.document(a), a, found, asked)
            for a in service().store().canvas_annotations(key, canvas.id, public=True) if audience.layer_of(a) in layers]


def _send(document: dict, mimetype: str) -> Response:
    body = dumps(document)
    return send(body, mimetype, headers=HEADERS, etag=etag_of(body))


def represent(document: dict, mimetype: str) -> Response:
    """Send a page or list as JSON-LD (MIMETYPE) or in the RDF format Accept or ``format`` asks for.

    Raises NotAcceptable, and FetchError when a JSON-LD context has no local copy.
    """
    body = dumps(document)
    fmt = choose_format(JSON_TYPES)
    if fmt is None:
        return send(body, mimetype, headers=GRAPH_HEADERS, etag=etag_of(body))
    quads = to_quads(document, service().config.conformance_dir)
    return send_graph(quads, fmt, etag_of(body), headers=GRAPH_HEADERS)


@bp.get("/<key:key>/manifest.json")
def manifest(key: str) -> Response:
    """The source manifest with every canvas linked to its page (v3) or list (v2) here."""
    found = find_manifest(key)
    base, asked = service().base, audience.read_language(request.args.get("lang"))
    links = {c.id: (audience.with_language(urls.page_url(base, key, c.index), asked),
                    audience.with_language(urls.list_url(base, key, c.index), asked)) for c in found.canvases}
    document = enriched_manifest(found, links, audience.with_language(urls.manifest_url(base, key), asked),
                                 record_links(base, key))
    document = contentsearch.advertise(document, found.version, base, key)
    return send_manifest(document, found.version)


def send_manifest(document: dict, version: int) -> Response:
    """Send an enriched manifest of Presentation VERSION."""
    return _send(document, IIIF3_JSONLD if version == 3 else IIIF2_JSONLD)


@bp.get("/<key:key>/pages/<int:index>.json")
def page(key: str, index: int) -> Response:
    """The annotations of canvas INDEX as a Presentation 3 AnnotationPage."""
    _, canvas = find_canvas(key, index)
    page_id = urls.page_url(service().base, key, index)
    return represent(annotation_page(canvas, live(key, canvas), page_id), IIIF3_JSONLD)


@bp.get("/<key:key>/lists/<int:index>.json")
def listing(key: str, index: int) -> Response:
    """The annotations of canvas INDEX as a Presentation 2.1 AnnotationList."""
    _, canvas = find_canvas(key, index)
    list_id = urls.list_url(service().base, key, index)
    return represent(annotation_list(canvas, live(key, canvas), list_id), IIIF2_JSONLD)
