"""The re-run rules, as pure code: given what a canvas holds and what a new run of a model found there,
decide what to create, update, retire and keep. The curators' work wins. The store applies the plan in
one transaction; nothing here touches a database.

Each new annotation is matched to a live one: by id, else by class and region (IoU >= MATCH_IOU, most
confident detection first, best overlap first). Matched to a reviewed (accepted, corrected), human-made
or human-edited annotation, it is dropped and that one stays frozen; to a rejected one, it is dropped
(the region and class stay suppressed, whichever model made them); to a pending machine annotation of
this model, that one takes its content (keeping its id and ``created``) unless only volatile fields
differ. Unmatched ones are created (a retired one returns under its id); pending machine annotations
of this model that nothing matched are retired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from .geometry import Box, iou
from .review import MATCH_IOU, box_of, class_of, state_iri

# A re-run stamps new times and its own run, and knows no review state; an annotation that differs only
# there is unchanged (and keeps the run that generated it).
VOLATILE = ("created", "modified", "reviewState", "wasGeneratedBy")
PENDING = state_iri("pending")


@dataclass
class Held:
    """An annotation the canvas holds (or a tombstone under an incoming id), as the rules see it."""

    id: str
    origin: str  # machine | human | edited
    model_sha256: str | None
    review_state: str | None
    deleted: bool
    text: str  # the stored JSON
    created: str
    box: Box | None = None  # its region, when the store keeps it in columns
    concept: str | None = None  # its class name, when the store keeps it in a column

    @cached_property
    def document(self) -> dict:
        """The stored document, parsed on first use."""
        return json.loads(self.text)

    @cached_property
    def class_name(self) -> str | None:
        """The class it tags: the stored column, else read from the document."""
        return self.concept or class_of(self.document)


@dataclass
class Plan:
    """What to write: creations (documents, with the tombstone each revives or None), updates of held
    annotations (id, new document), retirements (ids) and the counts a re-run reports."""

    create: list[tuple[dict, Held | None]] = field(default_factory=list)
    update: list[tuple[Held, dict]] = field(default_factory=list)
    retire: list[Held] = field(default_factory=list)
    kept: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Created, updated, deleted and kept (unchanged, frozen or suppressed) annotations."""
        return {"created": len(self.create), "updated": len(self.update), "deleted": len(self.retire),
                "kept": self.kept}


def updatable(held: Held, model_sha256: str) -> bool:
    """Whether a re-run may change this annotation: a pending machine annotation of its model."""
    return held.origin == "machine" and held.model_sha256 == model_sha256 and held.review_state in (None, "pending")


def matchable(held: Held, model_sha256: str) -> bool:
    """Whether a new detection matching this live annotation is absorbed by it: it is the model's
    own pending one, or curators have spoken (a verdict, a human tag, an edit)."""
    if held.origin == "machine":
        return updatable(held, model_sha256) or held.review_state not in (None, "pending")
    return "tagging" in held.document.get("motivation", "")


def _content(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in VOLATILE}


def _best_match(annotation: dict, candidates: dict[str, Held]) -> Held | None:
    """The candidate of the same class whose region overlaps ANNOTATION's most, if by IoU >= MATCH_IOU."""
    box, name = box_of(annotation), class_of(annotation)
    if box is None:
        return None
    best, best_iou = None, MATCH_IOU
    for candidate in candidates.values():
        if candidate.box is not None and candidate.class_name == name and (overlap := iou(box, candidate.box)) >= best_iou:
            best, best_iou = candidate, overlap
    return best


def plan(incoming: dict[str, dict], live: list[Held], by_id: dict[str, Held], model_sha256: str, stamp: str) -> Plan:
    """Decide what a run's INCOMING annotations (by id, of one canvas and model) do to the LIVE
    annotations of that canvas. BY_ID holds what the store has under each incoming id (live anywhere,
    or a tombstone); STAMP is the time of the run."""
    result = Plan()
    candidates = {held.id: held for held in live if matchable(held, model_sha256)}

    def match(held: Held, annotation: dict) -> None:
        del candidates[held.id]
        fresh = {**annotation, "id": held.id}
        if not updatable(held, model_sha256) or _content(held.document) == _content(fresh):
            result.kept += 1
            return
        changed = {**fresh, "created": held.document.get("created", held.created), "modified": stamp,
                   "reviewState": PENDING}
        result.update.append((held, changed))

    unmatched: list[tuple[dict, Held | None]] = []
    for anno_id, annotation in incoming.items():
        held = by_id.get(anno_id)
        if held is not None and held.id in candidates:
            match(held, annotation)
        elif held is None or (held.deleted and held.origin == "machine"):
            unmatched.append((annotation, held))
        else:  # a person's annotation or deletion under this id: theirs
            result.kept += 1
    unmatched.sort(key=lambda pair: -float(pair[0].get("confidence") or 0))
    for annotation, tombstone in unmatched:
        found = _best_match(annotation, candidates)
        if found is not None:
            match(found, annotation)
        else:
            result.create.append(({**annotation, "reviewState": PENDING}, tombstone))
    result.retire = [held for held in candidates.values() if updatable(held, model_sha256)]
    return result
