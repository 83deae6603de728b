"""Curators' verdicts on machine annotations, as W3C Web Annotations with motivation ``assessing``.

A verdict's first body names a concept of the verdict scheme (vocab/verdicts.ttl): ``accepted``,
``rejected`` or ``corrected`` for a machine annotation, its target pinned to the version judged (a
SpecificResource with a TimeState); ``exhaustive`` for a canvas, with one ``classifying`` body per COCO
class reviewed there. Further ``commenting`` bodies give reasons (not-present, wrong-concept ...).
A machine annotation carries the latest verdict as its ``reviewState`` (pending until judged).

This module builds and checks verdicts and matches boxes; the store writes them (one transaction
with the target's review state), the web layer serves them.

Errors: InputError (400) for a verdict that is not one, StaleVersion (409) for a verdict on a version
of the target that is no longer current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .annotate import textual_body
from .errors import InputError
from .geometry import Box, parse_xywh
from .jsonld import as_list

VERDICTS = "https://w3id.org/enricher/verdicts/"
COCO = "https://w3id.org/enricher/coco/"
STATES = ("pending", "accepted", "rejected", "corrected")  # what reviewState may say
JUDGEMENTS = ("accepted", "rejected", "corrected")  # verdicts on an annotation
EXHAUSTIVE = "exhaustive"  # the verdict on a canvas
REASONS = ("not-present", "wrong-concept", "duplicate", "bad-box")
HIDDEN = ("rejected", "corrected")  # states that take a machine annotation off the public view
MATCH_IOU = 0.5


@dataclass(frozen=True)
class Verdict:
    """A checked verdict: what it says (VERDICT, one of JUDGEMENTS or EXHAUSTIVE) about what."""

    document: dict
    verdict: str
    target: str | None  # the judged annotation's id (None for a canvas)
    canvas_id: str
    version: str | None  # the TimeState sourceDate: the judged version
    reasons: tuple[str, ...]
    classes: tuple[str, ...]  # for EXHAUSTIVE: the class names reviewed


def state_iri(name: str) -> str:
    """The IRI of a verdict or review state NAME."""
    return VERDICTS + name


def class_iri(name: str) -> str:
    """The COCO class concept of class NAME (spaces as underscores)."""
    return COCO + name.replace(" ", "_")


def _class_name(iri: str) -> str:
    """The class name a COCO class concept IRI names (the inverse of ``class_iri``)."""
    return iri[len(COCO):].replace("_", " ")


def version_of(annotation: Mapping) -> str | None:
    """The date that pins a version of ANNOTATION: its ``modified``, else its ``created``."""
    return annotation.get("modified") or annotation.get("created")


def text_body(value: str, purpose: str, subject: str, language: str = "en") -> dict:
    """A plain-text TextualBody that names SUBJECT."""
    return {**textual_body(value, language, purpose), "subject": subject}


def build_verdict(
    *, verdict_id: str, target: Mapping, verdict: str, creator: dict, created: str, reasons: Sequence[str] = ()
) -> dict:
    """Build the verdict VERDICT (accepted, rejected, corrected) on annotation TARGET as it is now."""
    bodies = [text_body(verdict, "assessing", state_iri(verdict))]
    bodies += [text_body(reason, "commenting", state_iri(reason)) for reason in reasons]
    state = {"type": "TimeState", "sourceDate": version_of(target)}
    return {"id": verdict_id, "type": "Annotation", "motivation": "assessing", "creator": creator, "created": created,
            "body": bodies, "target": {"type": "SpecificResource", "source": target["id"], "state": state}}


def build_exhaustive(
    *, verdict_id: str, canvas_id: str, manifest_id: str, classes: Iterable[str], creator: dict, created: str
) -> dict:
    """Build the statement that canvas CANVAS_ID was reviewed exhaustively for CLASSES (class names)."""
    bodies = [text_body("exhaustive", "assessing", state_iri(EXHAUSTIVE))]
    bodies += [text_body(name, "classifying", class_iri(name)) for name in sorted(set(classes))]
    source = {"id": canvas_id, "type": "Canvas", "partOf": [{"id": manifest_id, "type": "Manifest"}]}
    return {"id": verdict_id, "type": "Annotation", "motivation": "assessing", "creator": creator, "created": created,
            "body": bodies, "target": {"type": "SpecificResource", "source": source}}


def read_verdict(document: dict, canvas_ids: Iterable[str], where: str | None = None) -> Verdict:
    """Check a posted verdict and say what it judges; CANVAS_IDS are the manifest's canvases.

    Whether a judged annotation belongs to the manifest and is at the pinned version is the store's
    check (in its write transaction). Raises InputError with a JSON pointer to the fault.
    """
    if not isinstance(document, dict):
        raise InputError("a verdict must be a JSON object", where=where, pointer="")
    if document.get("type") != "Annotation":
        raise InputError('a verdict is an annotation: "type" must be "Annotation"', where=where, pointer="/type")
    if document.get("motivation") != "assessing":
        raise InputError('a verdict has the motivation "assessing"', where=where, pointer="/motivation")
    bodies = as_list(document.get("body"))
    if not bodies or not all(isinstance(b, dict) for b in bodies):
        raise InputError("a verdict needs bodies (objects), the first naming the verdict", where=where, pointer="/body")
    first = bodies[0].get("subject") or bodies[0].get("source") or bodies[0].get("id")
    name = first[len(VERDICTS):] if isinstance(first, str) and first.startswith(VERDICTS) else None
    if name not in (*JUDGEMENTS, EXHAUSTIVE):
        allowed = ", ".join(state_iri(n) for n in (*JUDGEMENTS, EXHAUSTIVE))
        raise InputError(f"the first body's subject {first!r} is not a verdict; use one of {allowed}",
                         where=where, pointer="/body/0/subject")
    target = document.get("target")
    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    if not isinstance(target, dict) or not target.get("source"):
        raise InputError("a verdict's target is a SpecificResource with a source", where=where, pointer="/target")
    source = target["source"]
    source_id = source.get("id") if isinstance(source, dict) else source
    canvases = set(canvas_ids)
    if name == EXHAUSTIVE:
        if not isinstance(source_id, str) or source_id not in canvases:
            raise InputError(f"{source_id!r} is not a canvas of this manifest", where=where, pointer="/target/source")
        classes = []
        for n, body in enumerate(bodies[1:], 1):
            subject = body.get("subject")
            if body.get("purpose") == "classifying":
                if not isinstance(subject, str) or not subject.startswith(COCO) or subject == COCO:
                    raise InputError(f"a classifying body names a class concept {COCO}...",
                                     where=where, pointer=f"/body/{n}/subject")
                classes.append(_class_name(subject))
        if not classes:
            raise InputError("an exhaustiveness statement names the classes reviewed (classifying bodies)",
                             where=where, pointer="/body")
        return Verdict(document, name, None, source_id, None, (), tuple(dict.fromkeys(classes)))
    if not isinstance(source_id, str) or not source_id or source_id in canvases:
        raise InputError("a verdict's target source is the id of a machine annotation", where=where, pointer="/target/source")
    state = target.get("state")
    version = state.get("sourceDate") if isinstance(state, dict) and state.get("type") == "TimeState" else None
    if not isinstance(version, str):
        raise InputError("pin the judged version: target.state is a TimeState with the sourceDate of the "
                         "annotation's modified (else created) date", where=where, pointer="/target/state")
    reasons = []
    for n, body in enumerate(bodies[1:], 1):
        subject = body.get("subject")
        if isinstance(subject, str) and subject.startswith(VERDICTS):
            if subject[len(VERDICTS):] not in REASONS:
                raise InputError(f"{subject!r} is not a reason; use one of {', '.join(map(state_iri, REASONS))}",
                                 where=where, pointer=f"/body/{n}/subject")
            reasons.append(subject[len(VERDICTS):])
    return Verdict(document, name, source_id, "", version, tuple(reasons), ())


def classes_reviewed(statement: Mapping) -> list[str]:
    """The class names an exhaustiveness statement's ``classifying`` bodies name, in order, once each."""
    subjects = (b.get("subject") for b in as_list(statement.get("body"))
                if isinstance(b, dict) and b.get("purpose") == "classifying")
    return list(dict.fromkeys(_class_name(s) for s in subjects if isinstance(s, str) and s.startswith(COCO)))


def box_of(annotation: Mapping) -> Box | None:
    """The region an annotation targets (canvas pixels), or None when it names no xywh region."""
    target = annotation.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    value = None
    if isinstance(target, str):
        value = target.partition("#")[2]
    elif isinstance(target, dict):
        selector = target.get("selector")
        if isinstance(selector, list):
            selector = selector[0] if selector else None
        value = selector.get("value") if isinstance(selector, dict) else None
    return parse_xywh(value, negative_origin=True) if isinstance(value, str) else None


@lru_cache(maxsize=1)
def _class_names() -> dict[tuple[str | None, str], str]:
    """(language, label) -> COCO class name, from vocab/coco.ttl."""
    from .vocab import Vocabulary

    names: dict[tuple[str | None, str], str] = {}
    for mapping in Vocabulary.load().classes.values():
        for language, text in mapping.labels.items():
            names.setdefault((language, text), mapping.name)
            names.setdefault((None, text), mapping.name)
    return names


def class_of(annotation: Mapping) -> str | None:
    """The model class an annotation tags: a body naming a COCO class concept, else its tagging body's
    text mapped back to a class name through the COCO vocabulary (an unknown text is taken as the name)."""
    bodies = [b for b in as_list(annotation.get("body")) if isinstance(b, dict)]
    for body in bodies:
        subject = body.get("subject")
        if isinstance(subject, str) and subject.startswith(COCO) and subject != COCO:
            return _class_name(subject)
    for body in bodies:
        if body.get("purpose") in ("tagging", None) and isinstance(body.get("value"), str):
            text = body["value"]
            names = _class_names()
            return names.get((body.get("language"), text)) or names.get((None, text)) or text
    return None


