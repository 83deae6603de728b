"""The review page for curators: ``/{key}/review`` (a static page, enricher/web/static/review.*) and the
queue it works through, ``/{key}/review/queue``: every machine annotation of a manifest, lowest
confidence pending first, with what the page needs to show and judge it. The page writes only through
the public API (POST /{key}/verdicts/ and /{key}/annotations/), with the curator's bearer token.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

from ..annotate import concept_value, textual_body
from ..errors import InputError
from ..manifest import Manifest
from ..store import StoredAnnotation
from ..vocab import ClassMapping, Vocabulary, normalise
from .annotations import find_manifest, find_stored
from .media import JSON, dumps, etag_of, send
from .state import service

bp = Blueprint("review", __name__)
STATIC = Path(__file__).with_name("static")
HEADERS = {"Allow": "GET, HEAD, OPTIONS"}
COCO = "https://w3id.org/enricher/coco/"
VERDICTS = "https://w3id.org/enricher/verdicts/"
PENDING = VERDICTS + "pending"
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_XYWH = re.compile(r"xywh=(?:pixel:)?([\d.]+),([\d.]+),([\d.]+),([\d.]+)")


@lru_cache(maxsize=None)
def vocabulary(extra: tuple[str, ...]) -> Vocabulary:
    """The vocabulary with the configured extra mapping files, loaded once per process."""
    return Vocabulary.load(extra)


def concept_iri(name: str) -> str:
    """The COCO class concept of a class name (spaces as underscores)."""
    return COCO + name.replace(" ", "_")


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
    bodies = [textual_body(text, used, "tagging")]
    bodies += [
        {**textual_body(concept_value(c, text, used), used, "classifying"), "subject": c.uri} for c in mapping.concepts
    ]
    return {"name": mapping.name, "label": text, "language": used, "concept": concept_iri(mapping.name), "bodies": bodies}


def _names(vocab: Vocabulary) -> dict[str, str]:
    """Every label (any language) and concept IRI of the vocabulary -> its class name."""
    names: dict[str, str] = {}
    for name, mapping in vocab.classes.items():
        names.update({normalise(label): name for label in mapping.labels.values()})
        names.update({c.uri: name for c in mapping.concepts})
        names[normalise(name)] = name
    return names


def class_name(document: dict, names: dict[str, str]) -> str:
    """The model class of a machine annotation: from its tagging label, else a concept it names."""
    for body in document.get("body", []):
        if body.get("purpose") == "tagging" and normalise(body.get("value", "")) in names:
            return names[normalise(body["value"])]
    for body in document.get("body", []):
        if body.get("subject") in names:
            return names[body["subject"]]
    tags = [b.get("value", "") for b in document.get("body", []) if b.get("purpose") == "tagging"]
    return tags[0] if tags else ""


def _box(document: dict) -> list[float]:
    match = _XYWH.fullmatch(document["target"]["selector"]["value"])
    return [float(v) for v in match.groups()]


def _item(stored: StoredAnnotation, manifest: Manifest, index: int, name: str, label: str) -> dict:
    document, canvas = stored.document, manifest.canvases[index]
    return {
        "id": stored.id,
        "etag": stored.etag,
        "version": document.get("modified") or document["created"],
        "canvas": index,
        "canvasId": canvas.id,
        "image": canvas.service_id or canvas.image_url,
        "imageService": canvas.service_version,
        "width": canvas.width,
        "height": canvas.height,
        "box": _box(document),
        "name": name,
        "label": label,
        "confidence": document.get("confidence"),
        "reviewState": (document.get("reviewState") or PENDING).removeprefix(VERDICTS),
    }


def _is_machine(stored: StoredAnnotation) -> bool:
    return stored.model_sha256 is not None and "generator" in stored.document


def build_queue(key: str, lang: str) -> dict:
    """The review queue of manifest KEY with labels in LANG.

    Raises NotFound for an unknown manifest.
    """
    stored_manifest, manifest = find_stored(key), find_manifest(key)
    vocab = vocabulary(tuple(service().config.vocab))
    names, store = _names(vocab), service().store()
    items = []
    for canvas in manifest.canvases:
        for stored in filter(_is_machine, store.canvas_annotations(key, canvas.id)):
            name = class_name(stored.document, names)
            items.append(_item(stored, manifest, canvas.index, name, vocab.lookup(name).label(lang)[0]))
    # what helps most first: the least sure pending ones, then the reviewed ones in the same order
    items.sort(key=lambda i: (i["reviewState"] != "pending", i["confidence"] or 0.0, i["canvas"], i["id"]))
    seen = {item["name"] for item in items}
    classes = [class_entry(m, lang) for m in vocab.classes.values()]
    classes += [class_entry(vocab.lookup(name), lang) for name in sorted(seen - set(vocab.classes))]
    reviewed = sum(item["reviewState"] != "pending" for item in items)
    return {
        "manifest": {"id": manifest.id, "label": stored_manifest.label, "key": key,
                     "url": service().manifest(key), "canvases": len(manifest.canvases)},
        "language": lang,
        "progress": {"reviewed": reviewed, "total": len(items)},
        "classes": classes,
        "items": items,
    }


@bp.get("/<key:key>/review")
def page(key: str) -> Response:
    """The review page of a manifest (the page reads its queue itself)."""
    find_stored(key)
    language()
    return send_from_directory(STATIC, "review.html", mimetype="text/html", max_age=0)


@bp.get("/<key:key>/review/queue")
def queue(key: str) -> Response:
    """The review queue: progress, the classes to choose from, the machine annotations to judge."""
    body = dumps(build_queue(key, language()))
    return send(body, JSON, headers=HEADERS, etag=etag_of(body))


@bp.get("/review/<any('review.js', 'review.css'):name>")
def asset(name: str) -> Response:
    """The page's script and style sheet."""
    return send_from_directory(STATIC, name, max_age=0)
