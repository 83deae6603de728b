"""Manifests for an audience: labels in the reader's language, and the public annotations in three
layers (IIIF Cookbook recipe 0309, AnnotationCollections): what a model made and nobody checked yet,
what curators verified, and what people made (additions and corrections). The verified-only manifest
shows the last two.

A machine annotation in another language gets the bodies ``annotate.class_bodies`` gives its class in
that language (English where the vocabulary has no label in it); people's annotations stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from . import urls
from .annotate import class_bodies
from .jsonld import IIIF3_CONTEXT
from .store import StoredAnnotation
from .vocab import Vocabulary

LAYERS = ("machine", "verified", "people")
VERIFIED_LAYERS = ("verified", "people")
# each layer's label in every language of the vocabulary (vocab/coco.ttl: en, de, fr, nl)
LAYER_LABELS: Mapping[str, Mapping[str, str]] = {
    "machine": {"en": "Machine-generated, not verified", "de": "Maschinell erzeugt, nicht geprüft",
                "fr": "Généré par machine, non vérifié", "nl": "Machinaal gegenereerd, niet geverifieerd"},
    "verified": {"en": "Verified by a curator", "de": "Von einer Kuratorin oder einem Kurator geprüft",
                 "fr": "Vérifié par un conservateur", "nl": "Geverifieerd door een conservator"},
    "people": {"en": "Made by people", "de": "Von Menschen erstellt", "fr": "Créé par des personnes",
               "nl": "Door mensen gemaakt"},
}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def layer_of(stored: StoredAnnotation) -> str:
    """The layer of a public annotation: ``machine`` (pending), ``verified`` (accepted) or ``people``."""
    if stored.origin != "machine":
        return "people"
    return "verified" if stored.review_state == "accepted" else "machine"


def languages(found: Vocabulary) -> list[str]:
    """The languages the vocabulary labels its classes in, English first."""
    spoken = {language for mapping in found.classes.values() for language in mapping.labels}
    return sorted(spoken, key=lambda language: (language != "en", language))


def read_language(value: str | None) -> str | None:
    """A language tag as given in ``lang``, or None when none (or no well-formed one) is given."""
    return value if value and _LANGUAGE.fullmatch(value) else None


def best_language(ranges: Iterable[tuple[str, float]], offered: Iterable[str]) -> str | None:
    """The offered language the Accept-Language RANGES (tag, quality) rank highest; a range matches its
    own tag, else its primary subtag (``de-CH`` takes ``de``), as RFC 4647 lookup does."""
    offered = list(offered)
    for tag, quality in sorted(ranges, key=lambda r: -r[1]):
        for wanted in (tag.lower(), tag.lower().split("-")[0]):
            if quality > 0 and wanted in offered:
                return wanted
    return None


def relabel(document: dict, stored: StoredAnnotation, found: Vocabulary, language: str | None) -> dict:
    """DOCUMENT (STORED as served) with its class named in LANGUAGE, when it is a machine annotation."""
    if language is None or stored.origin != "machine" or not stored.concept:
        return document
    return {**document, "body": class_bodies(found.lookup(stored.concept), language)}


def with_language(url: str, language: str | None) -> str:
    """URL asking for LANGUAGE (unchanged when None)."""
    return f"{url}?{urlencode({'lang': language})}" if language else url


def collection(base: str, key: str, layer: str, pages: Iterable[str]) -> dict:
    """The AnnotationCollection of a layer of manifest KEY: its label in every language and its pages."""
    pages = list(pages)
    first = {"first": {"id": pages[0], "type": "AnnotationPage"},
             "last": {"id": pages[-1], "type": "AnnotationPage"}} if pages else {}
    return {"@context": IIIF3_CONTEXT, **part_of(base, key, layer)[0], **first}


def part_of(base: str, key: str, layer: str) -> list[dict]:
    """The ``partOf`` of a layer's page: its AnnotationCollection with its label."""
    return [{"id": urls.layer_url(base, key, layer), "type": "AnnotationCollection",
             "label": {lang: [text] for lang, text in LAYER_LABELS[layer].items()}}]
