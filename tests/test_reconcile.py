"""The re-run rules as pure code (enricher.reconcile), without a database: what a new run of a model
does to what a canvas holds, and that the curators' work always wins."""

from __future__ import annotations

import json

from enricher.reconcile import PENDING, Held, plan

CANVAS = "https://example.org/iiif/book/canvas/1"
MODEL, OTHER_MODEL = "a" * 64, "b" * 64
STAMP = "2026-12-02T10:00:00Z"


def detection(n: int, box=(10, 10, 100, 100), label: str = "dog", confidence: float = 0.9) -> dict:
    """A machine annotation of class LABEL at BOX, as a run produces it."""
    return {
        "id": f"https://annotations.example.org/k/annotations/m{n}", "type": "Annotation", "motivation": "tagging",
        "body": [{"type": "TextualBody", "value": label, "purpose": "tagging"}], "confidence": confidence,
        "target": {"source": CANVAS, "selector": {"type": "FragmentSelector", "value": "xywh=%d,%d,%d,%d" % box}},
        "created": "2026-01-01T00:00:00Z",
    }


def held(document: dict, *, origin="machine", model=MODEL, state="pending", deleted=False) -> Held:
    """What the store holds: DOCUMENT as it was stored, with its columns."""
    box = tuple(float(v) for v in document["target"]["selector"]["value"][5:].split(","))
    return Held(document["id"], origin, model if origin == "machine" else None, state, deleted,
                json.dumps(document), document["created"], box, document["body"][0]["value"])


def run(incoming: list[dict], live: list[Held], tombstones: list[Held] = ()):
    by_id = {h.id: h for h in [*live, *tombstones] if h.id in {d["id"] for d in incoming}}
    return plan({d["id"]: d for d in incoming}, live, by_id, MODEL, STAMP)


def test_a_first_run_creates_everything_pending():
    result = run([detection(1), detection(2, box=(300, 300, 50, 50))], [])
    assert result.counts == {"created": 2, "updated": 0, "deleted": 0, "kept": 0}
    assert all(document["reviewState"] == PENDING and tombstone is None for document, tombstone in result.create)


def test_an_identical_rerun_keeps_everything():
    first = detection(1)
    stored = {**first, "reviewState": PENDING}
    result = run([{**first, "created": "2026-12-02T00:00:00Z"}], [held(stored)])
    assert result.counts == {"created": 0, "updated": 0, "deleted": 0, "kept": 1}


def test_a_changed_detection_updates_in_place_and_a_missing_one_is_retired():
    a, b = detection(1), detection(2, box=(300, 300, 50, 50))
    result = run([{**a, "confidence": 0.5}], [held(a), held(b)])
    (target, document), = result.update
    assert target.id == a["id"] and document["confidence"] == 0.5 and document["modified"] == STAMP
    assert document["created"] == a["created"] and document["reviewState"] == PENDING
    assert [h.id for h in result.retire] == [b["id"]]


def test_a_new_id_on_the_same_object_matches_by_class_and_region():
    old = detection(1)
    moved = detection(9, box=(12, 12, 100, 100))  # IoU well above 0.5, same class
    result = run([moved], [held(old)])
    (target, document), = result.update
    assert target.id == old["id"] and document["id"] == old["id"] and not result.create


def test_another_class_in_the_same_region_is_a_new_annotation():
    result = run([detection(9, label="cat")], [held(detection(1))])
    assert len(result.create) == 1 and [h.id for h in result.retire] == [detection(1)["id"]]


def test_reviewed_annotations_are_frozen_and_rejected_ones_suppress_the_region():
    accepted, rejected = detection(1), detection(2, box=(300, 300, 50, 50))
    result = run(
        [{**accepted, "confidence": 0.2}, detection(7, box=(301, 301, 50, 50))],
        [held(accepted, state="accepted"), held(rejected, state="rejected")],
    )
    assert result.counts == {"created": 0, "updated": 0, "deleted": 0, "kept": 2}


def test_a_persons_tag_absorbs_the_machine_detection_of_it():
    tag = {**detection(5), "id": "https://annotations.example.org/k/annotations/h1"}
    result = run([detection(1, box=(11, 11, 100, 100))], [held(tag, origin="human", state=None)])
    assert result.counts == {"created": 0, "updated": 0, "deleted": 0, "kept": 1}


def test_another_models_pending_annotations_are_neither_matched_nor_retired():
    theirs = detection(3)
    result = run([detection(1, box=(12, 12, 100, 100))], [held(theirs, model=OTHER_MODEL)])
    assert len(result.create) == 1 and not result.retire and not result.update


def test_a_retired_detection_comes_back_under_its_id():
    gone = detection(1)
    result = run([gone], [], tombstones=[held(gone, deleted=True)])
    (document, tombstone), = result.create
    assert tombstone.id == gone["id"] and document["id"] == gone["id"]


def test_a_person_deleting_an_annotation_keeps_it_deleted():
    deleted = detection(1)
    result = run([deleted], [], tombstones=[held(deleted, origin="edited", deleted=True)])
    assert result.counts == {"created": 0, "updated": 0, "deleted": 0, "kept": 1}


def test_the_most_confident_detection_takes_the_match():
    old = detection(1)
    weak = detection(8, box=(10, 10, 100, 100), confidence=0.3)
    strong = detection(9, box=(14, 14, 100, 100), confidence=0.8)
    result = run([weak, strong], [held(old)])
    (target, document), = result.update
    assert document["confidence"] == 0.8 and len(result.create) == 1 and result.create[0][0]["confidence"] == 0.3
