"""The public annotations in layers (enricher.audience): per layer an AnnotationCollection labelled in
every language of the vocabulary, and per canvas its Presentation 3 page and 2.1 list; and the
verified-only enriched manifest, whose canvases link the verified and the people's layers."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import audience, contentsearch, urls
from ..annotate import annotation_list, annotation_page, enriched_manifest
from .annotations import find_manifest
from .iiif import find_canvas, live, represent, send_manifest
from .media import IIIF2_JSONLD, IIIF3_JSONLD, dumps, etag_of, send
from .state import service

bp = Blueprint("layers", __name__)
LAYER = f"<any({', '.join(audience.LAYERS)}):layer>"


@bp.get("/<key:key>/verified/manifest.json")
def verified(key: str) -> Response:
    """The source manifest with every canvas linked to its verified and its people's pages (or lists)."""
    found = find_manifest(key)
    base, asked = service().base, audience.read_language(request.args.get("lang"))
    links = {c.id: [(audience.with_language(urls.layer_page_url(base, key, layer, c.index), asked),
                     audience.with_language(urls.layer_list_url(base, key, layer, c.index), asked))
                    for layer in audience.VERIFIED_LAYERS] for c in found.canvases}
    document = enriched_manifest(found, links, audience.with_language(urls.verified_manifest_url(base, key), asked))
    return send_manifest(contentsearch.advertise(document, found.version, base, key), found.version)


@bp.get(f"/<key:key>/layers/{LAYER}")
def collection(key: str, layer: str) -> Response:
    """The AnnotationCollection of LAYER: its label in every language, its first and last page."""
    found = find_manifest(key)
    pages = [urls.layer_page_url(service().base, key, layer, c.index) for c in found.canvases]
    body = dumps(audience.collection(service().base, key, layer, pages))
    return send(body, IIIF3_JSONLD, headers={"Allow": "GET, HEAD, OPTIONS"}, etag=etag_of(body))


@bp.get(f"/<key:key>/layers/{LAYER}/pages/<int:index>.json")
def page(key: str, layer: str, index: int) -> Response:
    """The annotations of LAYER on canvas INDEX as a Presentation 3 AnnotationPage, part of its collection."""
    _, canvas = find_canvas(key, index)
    page_id = urls.layer_page_url(service().base, key, layer, index)
    document = annotation_page(canvas, live(key, canvas, (layer,)), page_id)
    return represent({**document, "partOf": audience.part_of(service().base, key, layer)}, IIIF3_JSONLD)


@bp.get(f"/<key:key>/layers/{LAYER}/lists/<int:index>.json")
def listing(key: str, layer: str, index: int) -> Response:
    """The annotations of LAYER on canvas INDEX as a Presentation 2.1 AnnotationList, within its layer."""
    _, canvas = find_canvas(key, index)
    list_id = urls.layer_list_url(service().base, key, layer, index)
    document = annotation_list(canvas, live(key, canvas, (layer,)), list_id)
    label = [{"@value": text, "@language": lang} for lang, text in audience.LAYER_LABELS[layer].items()]
    within = {"@id": urls.layer_url(service().base, key, layer), "@type": "sc:Layer", "label": label}
    return represent({**document, "within": within}, IIIF2_JSONLD)
