"""Read what a IIIF manifest (or one of its canvases) says about machine-learning use of its images.

Two published ways to say it are understood:

* The IIIF Cookbook recipe 0514 "ML/AI Usage Tags": a Wikidata statement URI in ``rights`` (v2 ``license``)
  for machines and the same tag as the ``requiredStatement`` label (v2 ``attribution``) for people:
  No AI, No Image AI, Regulated ML/AI Use Permitted - Attribution Required / - Consent Required.
  The metadata and the ``noai``/``noimageai`` tokens the recipe borrows from HTML count too.
* The W3C TDM Reservation Protocol (TDMRep): ``tdm-reservation: 1``, here as a metadata entry or an extension
  property, or a link (``seeAlso``, ``service``, ...) to a TDMRep policy or ``tdmrep.json``.

Anything that forbids or reserves the use wins over anything that allows it, so an export never includes a
manifest because one of two contradicting statements allowed it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .jsonld import as_list

RECIPE = "IIIF Cookbook recipe 0514 (ML/AI usage tags)"
# Wikidata items of the recipe. The recipe's page gives Q127515163 for "No AI"; Wikidata has that item as
# the class of all the statements and Q127515624 as "No AI" itself: both are read as No AI.
NO_AI = {"Q127515624": "No AI", "Q127515163": "No AI", "Q127516405": "No Image AI"}
CONSENT = {"Q127518037": "Regulated ML/AI Use Permitted - Consent Required"}
ATTRIBUTION = {"Q127516763": "Regulated ML/AI Use Permitted - Attribution Required"}
WIKIDATA = re.compile(r"wikidata\.org/(?:wiki|entity)/(Q\d+)", re.IGNORECASE)
# Tags as labels, after lower-casing and turning every run of other characters into one space.
NO_AI_TAGS = {"no ai", "no ml", "no image ai", "no image ml", "noai", "noimageai"}
CONSENT_TAG = re.compile(r"^regulated (?:ml ai|ai ml|ai|ml) use permitted consent required")
ATTRIBUTION_TAG = re.compile(r"^regulated (?:ml ai|ai ml|ai|ml) use permitted attribution required")
NO_AI_TEXT = re.compile(r"\bno(?:image)?ai\b|should not be used for (?:ai|ml|machine learning)\b", re.IGNORECASE)
TDM_LABEL = re.compile(r"^(?:tdm reservation|tdmrep reservation|tdm rep reservation)$")
TDM_KEYS = ("tdm-reservation", "tdm:reservation", "tdmrep:reservation", "http://www.w3.org/ns/tdmrep#reservation")
TDM_LINK = re.compile(r"w3\.org/ns/tdmrep|tdmrep\.json|tdm-?policy", re.IGNORECASE)
LINK_PROPERTIES = ("seeAlso", "service", "services", "rendering", "homepage", "related", "within")
TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class AIUse:
    """What a resource allows: ALLOWED, else REASON; ATTRIBUTION names what must be credited when allowed."""

    allowed: bool
    reason: str = ""
    attribution: str | None = None


def _texts(value: Any) -> Iterator[str]:
    """Every string of a v2 value (string, list, @value object) or v3 language map, without HTML tags."""
    if isinstance(value, str):
        yield " ".join(html.unescape(TAGS.sub(" ", value)).split())
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        if "@value" in value:
            yield from _texts(value["@value"])
        else:
            for item in value.values():
                yield from _texts(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def _tag(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _uris(resource: dict) -> Iterator[tuple[str, str]]:
    for prop in ("rights", "license"):
        for value in as_list(resource.get(prop)):
            uri = value.get("@id") or value.get("id") if isinstance(value, dict) else value
            if isinstance(uri, str):
                yield prop, uri


def _statements(resource: dict) -> Iterator[tuple[str, list[str], list[str]]]:
    """(where, label texts, value texts) of requiredStatement, v2 attribution and each metadata entry."""
    required = resource.get("requiredStatement")
    if isinstance(required, dict):
        yield "requiredStatement", list(_texts(required.get("label"))), list(_texts(required.get("value")))
    if "attribution" in resource:
        texts = list(_texts(resource["attribution"]))
        yield "attribution", texts, texts
    for index, entry in enumerate(as_list(resource.get("metadata"))):
        if isinstance(entry, dict):
            yield f"metadata[{index}]", list(_texts(entry.get("label"))), list(_texts(entry.get("value")))


def _links(resource: dict) -> Iterator[tuple[str, str]]:
    for prop in LINK_PROPERTIES:
        for link in as_list(resource.get(prop)):
            if isinstance(link, dict):
                name = str(link.get("id") or link.get("@id") or "")
                text = " ".join(str(link.get(k, "")) for k in ("profile", "type", "@type", "@context", "format"))
            else:
                name = text = str(link)
            if TDM_LINK.search(f"{name} {text}"):
                yield prop, name or text


def _reserved(value: Any) -> bool:
    return any(text.strip() in {"1", "true"} for text in _texts(value)) or value is True


def findings(resource: dict) -> Iterator[tuple[str, str]]:
    """Yield (kind, reason) for each statement of RESOURCE: kind is forbid, consent or attribution."""
    for prop, uri in _uris(resource):
        match = WIKIDATA.search(uri)
        qid = match.group(1).upper() if match else ""
        if qid in NO_AI:
            yield "forbid", f"{prop} {uri} is the {NO_AI[qid]} statement of the {RECIPE}"
        elif qid in CONSENT:
            yield "consent", f"{prop} {uri} is the {CONSENT[qid]} statement of the {RECIPE}"
        elif qid in ATTRIBUTION:
            yield "attribution", f"{prop} {uri}"
    for where, labels, values in _statements(resource):
        for label in map(_tag, labels):
            if label in NO_AI_TAGS:
                yield "forbid", f"{where} is labelled {label!r} ({RECIPE})"
            elif CONSENT_TAG.match(label):
                yield "consent", f"{where} is labelled 'Regulated ML/AI Use Permitted - Consent Required' ({RECIPE})"
            elif ATTRIBUTION_TAG.match(label):
                yield "attribution", f"{where}: {' '.join(values)}"
            elif TDM_LABEL.match(label) and any(v.strip() == "1" for v in values):
                yield "forbid", f"{where} declares tdm-reservation 1 (W3C TDM Reservation Protocol)"
        for text in values:
            if NO_AI_TEXT.search(text):
                yield "forbid", f"{where} says {text[:120]!r}"
    for key in TDM_KEYS:
        if key in resource and _reserved(resource[key]):
            yield "forbid", f"{key} is 1 (W3C TDM Reservation Protocol)"
    for prop, link in _links(resource):
        yield "forbid", f"{prop} links a TDM reservation policy {link} (W3C TDM Reservation Protocol)"


def ai_use(*resources: dict | None, consented: bool = False, credit: str = "") -> AIUse:
    """Decide whether the images of RESOURCES (a manifest, then a canvas of it) may be used to train a model.

    CONSENTED says the holder's written consent was obtained (for the Consent Required statement); CREDIT
    is the title and URL to credit where attribution is required."""
    attribution = None
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        for kind, reason in findings(resource):
            if kind == "forbid":
                return AIUse(False, reason)
            if kind == "consent" and not consented:
                return AIUse(False, f"{reason}; no consent recorded")
            if kind in ("consent", "attribution"):
                attribution = credit or reason
    return AIUse(True, attribution=attribution)


def rights_statement(resource: dict) -> str | None:
    """Return the rights URI of RESOURCE (v3 ``rights``, v2 ``license``; the first of a list), or None."""
    rights = resource.get("rights") or resource.get("license")
    if isinstance(rights, list):
        rights = rights[0] if rights else None
    return rights if isinstance(rights, str) else None


def canvas_document(manifest: dict, canvas_id: str) -> dict | None:
    """Return the canvas CANVAS_ID of a v2 or v3 manifest document, or None."""
    canvases = as_list(manifest.get("items"))
    for sequence in as_list(manifest.get("sequences")):
        if isinstance(sequence, dict):
            canvases += as_list(sequence.get("canvases"))
    for canvas in canvases:
        if isinstance(canvas, dict) and (canvas.get("id") or canvas.get("@id")) == canvas_id:
            return canvas
    return None
