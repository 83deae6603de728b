"""Web Annotations for detections, and the IIIF pages, lists and manifests that carry them.

Everything is built as plain dicts, never through a JSON-LD processor (that costs about a hundred
times more); tests prove the dicts mean what docs/terms.md says by expanding them with pyld.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import urlsplit

from .errors import EnricherError, RegionError
from .geometry import Box
from .jsonld import ANNO_CONTEXT, ENRICHER_CONTEXT, IIIF2_CONTEXT, IIIF3_CONTEXT
from .urls import container_url, public_base

if TYPE_CHECKING:  # only for hints: building annotations needs none of these modules loaded
    from .config import Config
    from .detect import Detection
    from .manifest import Canvas, Manifest
    from .vocab import ClassMapping, Concept

SOFTWARE = "enricher"
MEDIA_FRAGMENTS = "http://www.w3.org/TR/media-frags/"
ANNOTATION_CONTEXT = [ANNO_CONTEXT, ENRICHER_CONTEXT]
# The IIIF context must come last. The W3C context comes first because the IIIF context scopes its
# annotation terms to Annotation nodes only, so bodies and agents would lose them (TextualBody,
# purpose, Software) without it; our context sits between and only adds terms.
PAGE_CONTEXT = [ANNO_CONTEXT, ENRICHER_CONTEXT, IIIF3_CONTEXT]
LIST_CONTEXT = [IIIF2_CONTEXT, ENRICHER_CONTEXT]
SCHEME_NAMES = {"wikidata": "Wikidata", "iconclass": "Iconclass"}
CONFIDENCE_DIGITS = 4


@dataclass(frozen=True)
class Generator:
    """The software and model behind a run's annotations: the weights as given, and the runtime that ran
    them (``openvino 2025.1.0``; empty when unknown)."""

    software_version: str
    model_name: str
    model_sha256: str
    runtime: str = ""

    def agent(self) -> dict:
        """Return the ``generator`` of an annotation: a Software agent naming our version, the model and
        the runtime that ran it."""
        return {
            "type": "Software",
            "name": f"{SOFTWARE} {self.software_version} ({self.model_name})",
            "softwareVersion": self.software_version,
            "model": self.model_name,
            "modelSha256": self.model_sha256,
            **({"runtime": self.runtime} if self.runtime else {}),
        }


def canvas_box(box: Box, canvas: Canvas) -> tuple[int, int, int, int]:
    """Clip a canvas box to the canvas and widen it to whole pixels; RegionError if nothing is left."""
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[0] + box[2], canvas.width), min(box[1] + box[3], canvas.height)
    if not (x1 > x0 and y1 > y0):
        raise RegionError(f"box {box} lies outside the {canvas.width}x{canvas.height} canvas", where=canvas.id)
    # floor/ceil, not round: the published region must still cover the whole detection
    left, top = math.floor(x0), math.floor(y0)
    return left, top, math.ceil(x1) - left, math.ceil(y1) - top


def manifest_key(manifest_id: str) -> str:
    """The short, stable path segment under which a source manifest's results are published."""
    return hashlib.sha256(manifest_id.encode("utf-8")).hexdigest()[:16]


def annotation_id(container: str, canvas_id: str, model_sha256: str, label: str, box: Box) -> str:
    """Return the annotation's IRI in CONTAINER: a hash of what identifies a detection, so reruns give
    the same id. ``box`` is the published integer box (floats are rounded first)."""
    whole = ",".join(str(round(v)) for v in box)
    key = "\n".join((canvas_id, model_sha256, label, whole))
    return f"{container}{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def concept_value(concept: Concept, label: str, language: str) -> str:
    """Return the display text of a concept body, such as ``Wikidata Q144: dog``."""
    scheme = SCHEME_NAMES.get(concept.scheme) or urlsplit(concept.uri).hostname or concept.scheme
    notation = concept.notation or concept.uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{scheme} {notation}: {concept.labels.get(language, label)}"


def textual_body(value: str, language: str, purpose: str) -> dict:
    """Return a plain-text TextualBody."""
    return {"type": "TextualBody", "value": value, "language": language, "format": "text/plain", "purpose": purpose}


def class_bodies(mapping: ClassMapping, language: str) -> list[dict]:
    """The bodies naming a class: its label in LANGUAGE (tagging), then one classifying body per concept.

    Every body carries a ``value`` (Mirador 3 and 4 fail on a body without one), and the W3C model
    forbids ``value`` next to ``source``; so a concept is a TextualBody whose ``subject`` is its IRI.
    """
    text, used = mapping.label(language)
    bodies = [textual_body(text, used, "tagging")]
    bodies += [
        {**textual_body(concept_value(concept, text, used), used, "classifying"), "subject": concept.uri}
        for concept in mapping.concepts
    ]
    return bodies


def region_target(canvas_id: str, manifest_id: str, box: tuple[int, int, int, int]) -> dict:
    """Return the target of an annotation on region BOX (whole canvas units) of a canvas of a manifest."""
    return {
        "type": "SpecificResource",
        "source": {"id": canvas_id, "type": "Canvas", "partOf": [{"id": manifest_id, "type": "Manifest"}]},
        "selector": {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGMENTS, "value": "xywh=%d,%d,%d,%d" % box},
    }


def build_annotation(
    *,
    canvas: Canvas,
    manifest: Manifest,
    detection: Detection,
    mapping: ClassMapping,
    generator: Generator,
    created: str,
    config: Config,
) -> dict:
    """Build the W3C Web Annotation of one detection (box in canvas coordinates).

    Raises RegionError when the box lies outside the canvas, EnricherError for a score outside 0..1.
    """
    if not 0.0 <= detection.score <= 1.0:
        raise EnricherError(f"confidence {detection.score} of {detection.label!r} is not in 0..1", where=canvas.id)
    box = canvas_box(detection.box, canvas)
    bodies = class_bodies(mapping, config.language)
    return {
        "@context": ANNOTATION_CONTEXT,
        "id": annotation_id(
            container_url(public_base(config.base_url), manifest_key(manifest.id)),
            canvas.id, generator.model_sha256, detection.label, box,
        ),
        "type": "Annotation",
        "motivation": "tagging",
        "created": created,
        "generator": generator.agent(),
        **({"rights": config.licence} if config.licence else {}),
        "confidence": round(float(detection.score), CONFIDENCE_DIGITS),
        "body": bodies,
        "target": region_target(canvas.id, manifest.id, box),
    }


def _targets(annotation: dict, canvas: Canvas) -> str:
    target = annotation["target"]
    if target["source"]["id"] != canvas.id:
        raise EnricherError(f"annotation {annotation['id']} targets {target['source']['id']}", where=canvas.id)
    return target["selector"]["value"]


def annotation_page(canvas: Canvas, annotations: list[dict], page_id: str) -> dict:
    """Wrap a canvas's annotations in an IIIF Presentation 3 AnnotationPage.

    Raises EnricherError if an annotation targets another canvas.
    """
    for annotation in annotations:
        _targets(annotation, canvas)
    return {
        "@context": PAGE_CONTEXT,
        "id": page_id,
        "type": "AnnotationPage",
        "items": [{k: v for k, v in annotation.items() if k != "@context"} for annotation in annotations],
    }


def _v2_resource(body: dict) -> dict:
    """One embedded text per body, with the concept it names as its ``subject``.

    Every resource needs ``chars``: Mirador 3 and 4 list each resource of an ``oa:tagging`` annotation
    as a tag and fail on one without. So a concept is not an ``oa:SemanticTag`` (whose id would be the
    concept, leaving no place for its display text) but text about it, as in v3.
    """
    text = {"@type": "dctypes:Text", "format": body.get("format", "text/plain"), "chars": body.get("value", "")}
    if "language" in body:
        text["language"] = body["language"]
    if "subject" in body:
        text["subject"] = body["subject"]
    return text


def _v2_annotation(annotation: dict, canvas: Canvas) -> dict:
    fragment = _targets(annotation, canvas)
    bodies = annotation.get("body", [])
    converted = {
        "@id": annotation["id"],
        "@type": "oa:Annotation",
        "motivation": "oa:tagging",
        "resource": [_v2_resource(body) for body in (bodies if isinstance(bodies, list) else [bodies])],
        "on": f"{canvas.id}#{fragment}",
    }
    if "confidence" in annotation:
        converted["confidence"] = annotation["confidence"]
    return converted


def annotation_list(canvas: Canvas, annotations: list[dict], list_id: str) -> dict:
    """Render a canvas's annotations as an IIIF Presentation 2.1 AnnotationList (for v2 viewers).

    Raises EnricherError if an annotation targets another canvas.
    """
    return {
        "@context": LIST_CONTEXT,
        "@id": list_id,
        "@type": "sc:AnnotationList",
        "resources": [_v2_annotation(annotation, canvas) for annotation in annotations],
    }


def _with(entries: Any, entry: dict, key: str) -> list:
    """Return ``entries`` as a list with ``entry`` appended, unless one with the same ``key`` is there."""
    entries = [] if entries is None else list(entries) if isinstance(entries, list) else [entries]
    known = {e.get(key) if isinstance(e, dict) else e for e in entries}
    return entries if entry[key] in known else entries + [entry]


def _pairs(value: tuple[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """One (page, list) link, or several, as a list."""
    return [value] if len(value) == 2 and all(isinstance(v, str) for v in value) else list(value)


def enriched_manifest(
    manifest: Manifest, links: Mapping[str, tuple[str, str] | Sequence[tuple[str, str]]], manifest_id: str | None = None,
    see_also: Sequence[dict] = (),
) -> dict:
    """Copy the source manifest and link each canvas in ``links`` to its page (v3) or list (v2), or to
    each of several.

    ``manifest_id`` (our published URL) replaces the source id, so viewers that resolve a manifest by
    its id load ours; the source stays reachable through ``seeAlso``, as does each of SEE_ALSO (v3
    references: id, type, format, profile). Existing links stay, and a link already there is not added
    twice (enriching an enriched manifest again changes nothing).
    """
    document = copy.deepcopy(manifest.document)
    if manifest.version == 3:
        for canvas in document.get("items", []):
            for page_id, _ in _pairs(links.get(canvas.get("id"), ())):
                page = {"id": page_id, "type": "AnnotationPage"}
                canvas["annotations"] = _with(canvas.get("annotations"), page, "id")
        source = {"id": manifest.id, "type": "Manifest", "format": "application/ld+json", "profile": IIIF3_CONTEXT}
        id_key = "id"
    else:
        for sequence in document.get("sequences", []):
            for canvas in sequence.get("canvases", []):
                for _, list_id in _pairs(links.get(canvas.get("@id"), ())):
                    listing = {"@id": list_id, "@type": "sc:AnnotationList"}
                    canvas["otherContent"] = _with(canvas.get("otherContent"), listing, "@id")
        source = {"@id": manifest.id, "format": "application/ld+json", "profile": IIIF2_CONTEXT}
        id_key = "@id"
    for reference in see_also:
        entry = reference if manifest.version == 3 else {"@id": reference["id"], **{
            k: v for k, v in reference.items() if k not in ("id", "type")}}
        document["seeAlso"] = _with(document.get("seeAlso"), entry, id_key)
    if manifest_id and manifest_id != manifest.id:
        document[id_key] = manifest_id
        document["seeAlso"] = _with(document.get("seeAlso"), source, id_key)
    return document
