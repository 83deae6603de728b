"""Check an annotation a person sends (POST, PUT) and bring it to the shape the store and the IIIF
pages serve, so it shows in viewers like the machine ones.

The constraints (the container's ``constrainedBy``), each failure naming its JSON pointer:
- ``@context`` is the W3C context, optionally followed by ours (the annotation is served with both);
- ``type`` is ``Annotation``; no ``body`` next to ``bodyValue``;
- exactly one ``target``: a canvas of the container's manifest with a size, whole or an ``xywh=`` region, given as
  ``canvas``, ``canvas#xywh=...``, or a SpecificResource with a FragmentSelector; it is rewritten as
  a SpecificResource whose source names the canvas and its manifest;
- every body is an object with a display ``value`` (Mirador 3 and 4 fail without one); a
  ``bodyValue`` becomes the equivalent TextualBody, and a single body becomes a list of one;
- on PUT, ``id`` (if given) is the annotation's own and ``canonical``/``via`` keep their values.
A client-chosen ``id`` on POST moves to ``via``, as the protocol asks.
"""

from __future__ import annotations

from typing import Any

from ..annotate import canvas_box, region_target
from ..errors import InputError, InvalidField, RegionError
from ..geometry import parse_xywh
from ..jsonld import ANNO_CONTEXT, ENRICHER_CONTEXT
from ..manifest import Canvas, Manifest

ALLOWED_CONTEXTS = (ANNO_CONTEXT, ENRICHER_CONTEXT)


def _context(document: dict) -> None:
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if not contexts or contexts[0] != ANNO_CONTEXT or any(c not in ALLOWED_CONTEXTS for c in contexts):
        raise InvalidField(
            f"@context must be {ANNO_CONTEXT!r}, optionally followed by {ENRICHER_CONTEXT!r}", pointer="/@context"
        )


def _types(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _bodies(document: dict) -> list[dict] | None:
    if "bodyValue" in document:
        if "body" in document:
            raise InvalidField("an annotation has either body or bodyValue, not both", pointer="/bodyValue")
        if not isinstance(document["bodyValue"], str):
            raise InvalidField("bodyValue must be a string", pointer="/bodyValue")
        return [{"type": "TextualBody", "value": document.pop("bodyValue"), "format": "text/plain"}]
    if "body" not in document:
        return None
    listed = isinstance(document["body"], list)
    bodies = document["body"] if listed else [document["body"]]
    for index, body in enumerate(bodies):
        pointer = f"/body/{index}" if listed else "/body"
        if not isinstance(body, dict):
            raise InvalidField("each body must be an object with a display value", pointer=pointer)
        if not isinstance(body.get("value"), str) or not body["value"].strip():
            raise InvalidField("each body needs a non-empty string value to display", pointer=pointer + "/value")
    return bodies


def _region(fragment: str, canvas: Canvas, pointer: str) -> tuple[int, int, int, int]:
    if not fragment:
        return 0, 0, canvas.width, canvas.height
    box = parse_xywh(fragment)
    if box is None:
        raise InvalidField(f"region {fragment!r} is not xywh=x,y,w,h in canvas pixels", pointer=pointer)
    try:
        return canvas_box(box, canvas)
    except RegionError as exc:
        raise InvalidField(exc.detail, pointer=pointer) from None


def _target(value: Any, manifest: Manifest) -> dict:
    pointer = "/target"
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidField("an annotation here has exactly one target", pointer=pointer)
        value, pointer = value[0], "/target/0"
    extra: dict = {}
    if isinstance(value, str):
        source, _, fragment = value.partition("#")
        fragment_pointer = source_pointer = pointer
    elif isinstance(value, dict) and "source" in value:
        extra = {k: v for k, v in value.items() if k not in ("type", "source", "selector")}
        source = value["source"].get("id") if isinstance(value["source"], dict) else value["source"]
        source_pointer = pointer + "/source"
        selector = value.get("selector")
        fragment, fragment_pointer = "", pointer + "/selector"
        if selector is not None:
            if not isinstance(selector, dict) or selector.get("type") != "FragmentSelector":
                raise InvalidField("the one selector supported: a FragmentSelector, xywh=", pointer=fragment_pointer)
            fragment, fragment_pointer = str(selector.get("value", "")), fragment_pointer + "/value"
    elif isinstance(value, dict) and isinstance(value.get("id"), str):
        source, _, fragment = value["id"].partition("#")
        fragment_pointer = source_pointer = pointer + "/id"
    else:
        raise InvalidField("target must be a canvas IRI or a SpecificResource on a canvas", pointer=pointer)
    canvas = next((c for c in manifest.canvases if c.id == source), None)
    if canvas is None:
        raise InvalidField(f"{source!r} is not a canvas of manifest {manifest.id}", pointer=source_pointer)
    if canvas.width is None or canvas.height is None:
        raise InvalidField(f"canvas {canvas.id} declares no size, nor does its image: it cannot be annotated here",
                           pointer=source_pointer)
    box = _region(fragment, canvas, fragment_pointer)
    return {**extra, **region_target(canvas.id, manifest.id, box)}


def check_annotation(document: Any, manifest: Manifest) -> dict:
    """Return the annotation to store (no @context, target normalised, bodies listed).

    Raises InvalidField naming the offending field by JSON pointer.
    """
    if not isinstance(document, dict):
        raise InputError("the request body must be a JSON object: one annotation")
    document = dict(document)
    _context(document)
    if "Annotation" not in _types(document.get("type")):
        raise InvalidField("type must be Annotation", pointer="/type")
    if "target" not in document:
        raise InvalidField("an annotation needs a target", pointer="/target")
    bodies = _bodies(document)
    if bodies is not None:
        document["body"] = bodies
    document["target"] = _target(document["target"], manifest)
    del document["@context"]
    return document


def for_create(document: Any, manifest: Manifest) -> dict:
    """Check a POSTed annotation; a client-chosen id becomes ``via``.

    Raises InvalidField.
    """
    annotation = check_annotation(document, manifest)
    given = annotation.pop("id", None)
    if given is not None and "via" not in annotation:
        annotation["via"] = given
    return annotation


def for_update(document: Any, manifest: Manifest, current: dict) -> dict:
    """Check a PUT annotation against the CURRENT one: same id, unchanged canonical and via.

    Raises InvalidField.
    """
    annotation = check_annotation(document, manifest)
    if annotation.setdefault("id", current["id"]) != current["id"]:
        raise InvalidField(f"id must stay {current['id']}", pointer="/id")
    for key in ("canonical", "via"):
        if key in current and annotation.get(key) != current[key]:
            raise InvalidField(f"{key} is set and must stay {current[key]!r}", pointer=f"/{key}")
    return annotation
