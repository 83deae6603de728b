"""The review page for curators: ``/{key}/review`` (a static page, enricher/web/static/review.*) and the
queue it works through, ``/{key}/review/queue``: every machine annotation of a manifest, lowest
confidence pending first, with what the page needs to show and judge it, and every canvas (those the
model found nothing on too, so that their missed objects can be boxed and their review stated complete). The page writes only through
the public API (POST /{key}/verdicts/ and /{key}/annotations/), with the curator's bearer token. The
page is sent with a Content-Security-Policy that lets only its own script run, and the script writes
every text it shows as text (``textContent``), never as markup.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, request, send_from_directory

from .. import urls
from ..annotate import class_bodies
from ..datafiles import REVIEW_STATIC_DIR
from ..errors import InputError
from ..manifest import Canvas
from ..review import box_of, class_iri, class_of, version_of
from ..store import StoredAnnotation
from ..vocab import ClassMapping, Vocabulary, loaded
from .annotations import find_stored
from .media import JSON, dumps, etag_of, send
from .state import service

bp = Blueprint("review", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS"}
# What the page may load: its own script and style sheet only (no inline script or style, so text from
# an annotation or a manifest can never run), images from any IIIF image server, JSON from this service
# and the image servers' info.json; it may not be framed (a token is typed into it) nor post forms.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src * data:", "connect-src *",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
))
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def language() -> str:
    """The curator's language: ``lang`` (a BCP 47 tag), else the service's.

    Raises InputError for a ``lang`` that is not a language tag.
    """
    lang = request.args.get("lang") or service().config.language
    if not _LANGUAGE.fullmatch(lang):
        raise InputError(f"lang must be a language tag such as 'de' or 'pt-BR', not {lang!r}", where=request.url)
    return lang


def class_entry(mapping: ClassMapping, lang: str) -> dict:
    """A class as the page offers it: its label in LANG, its concept and the bodies a correction to it
    carries (the machine annotations' shape: a tagging label, then one classifying body per concept)."""
    text, used = mapping.label(lang)
    bodies = class_bodies(mapping, lang)
    return {"name": mapping.name, "label": text, "language": used, "concept": class_iri(mapping.name), "bodies": bodies}


def _picture(canvas: Canvas) -> dict:
    """What the page needs to draw CANVAS: its image (service or file) and size."""
    return {
        "image": canvas.service_id or canvas.image_url,
        "imageService": canvas.service_version,
        "width": canvas.width,
        "height": canvas.height,
    }


def _item(stored: StoredAnnotation, canvas: Canvas, vocab: Vocabulary, lang: str) -> dict:
    document = stored.document
    # rows stored before the review migration have no class column: read it from the bodies
    name = stored.concept or class_of(document) or ""
    return {
        "id": stored.id,
        "etag": stored.etag,
        "version": version_of(document),
        "canvas": canvas.index,
        "canvasId": canvas.id,
        **_picture(canvas),
        "box": list(box_of(document)),
        "name": name,
        "label": vocab.lookup(name).label(lang)[0],
        "confidence": document.get("confidence"),
        "reviewState": stored.review_state or "pending",
    }


def _canvas(canvas: Canvas, complete: set[str]) -> dict:
    """A canvas as the page shows it; COMPLETE: the ids of the canvases stated reviewed exhaustively."""
    return {
        "index": canvas.index,
        "id": canvas.id,
        "label": canvas.label,
        **_picture(canvas),
        "exhaustive": canvas.id in complete,
    }


def build_queue(key: str, lang: str) -> dict:
    """The review queue of manifest KEY with labels in LANG.

    Raises NotFound for an unknown manifest.
    """
    stored_manifest = find_stored(key)
    manifest = service().parsed(stored_manifest)  # find_manifest would read the stored row again
    vocab, store = loaded(service().config.vocab), service().store()
    items = [
        _item(stored, canvas, vocab, lang)
        for canvas in manifest.canvases
        for stored in store.canvas_annotations(key, canvas.id)
        if stored.model_sha256 is not None  # machine annotations only: people's own need no verdict
    ]
    # what helps most first: the least sure pending ones, then the reviewed ones in the same order
    items.sort(key=lambda i: (i["reviewState"] != "pending", i["confidence"] or 0.0, i["canvas"], i["id"]))
    unknown = sorted({item["name"] for item in items} - set(vocab.classes))
    classes = [class_entry(m, lang) for m in (*vocab.classes.values(), *map(vocab.lookup, unknown))]
    complete = {s.canvas_id for s in store.exhaustive_statements([key])}
    return {
        "manifest": {"id": manifest.id, "label": stored_manifest.label, "key": key,
                     "url": urls.manifest_url(service().base, key), "canvases": len(manifest.canvases)},
        "language": lang,
        "progress": {"reviewed": sum(item["reviewState"] != "pending" for item in items), "total": len(items)},
        "exhaustive": [c.index for c in manifest.canvases if c.id in complete],
        "classes": classes,
        "canvases": [_canvas(c, complete) for c in manifest.canvases],
        "items": items,
    }


@bp.get("/<key:key>/review")
def page(key: str) -> Response:
    """The review page of a manifest (the page reads its queue itself)."""
    find_stored(key)
    language()
    response = send_from_directory(REVIEW_STATIC_DIR, "review.html", mimetype="text/html", max_age=0)
    response.headers.update(PAGE_HEADERS)
    return response


@bp.get("/<key:key>/review/queue")
def queue(key: str) -> Response:
    """The review queue: progress, the classes to choose from, the machine annotations to judge."""
    body = dumps(build_queue(key, language()))
    return send(body, JSON, headers=HEADERS, etag=etag_of(body))


@bp.get("/review/<any('review.js', 'review.css'):asset>")
def static_file(asset: str) -> Response:
    """The page's script and style sheet."""
    response = send_from_directory(REVIEW_STATIC_DIR, asset, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
