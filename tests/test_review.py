"""Review in the store: verdicts, corrections and exhaustiveness statements pass the W3C MUST schemas
and our SHACL shapes; a verdict and its target's review state change together, pinned to the judged
version; re-runs reconcile (reviewed annotations frozen, rejected ones suppressed, pending ones
updated or retired); ground truth comes from exhaustively reviewed canvases."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import pytest
from conformance import assert_w3c_annotation
from pyshacl import validate
from rdflib import Graph, URIRef
from real_annotations import SHA, machine_annotations, manifest

from enricher import rdf
from enricher.annotate import ANNOTATION_CONTEXT, manifest_key
from enricher.datafiles import ANNOTATION_SHAPES, VERDICT_SHAPES
from enricher.errors import InputError, StaleVersion
from enricher.groundtruth import predictions, reviewed_canvases
from enricher.review import (
    box_of,
    build_exhaustive,
    build_verdict,
    class_of,
    read_verdict,
    state_iri,
    version_of,
)
from enricher.store import Store, open_store
from enricher.store.sqlite.legacy import STEPS
from enricher.vocab import Vocabulary

CURATOR = {"type": "Person", "nickname": "curator"}
NOW = "2026-02-01T10:00:00Z"


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def built(config, parsed):
    """The real machine annotations of canvas 0 and 1 (dog, horse, person; dog, bear), one model."""
    everything = machine_annotations(config(base_url="https://enricher.example.org/"), Vocabulary.load(), parsed)
    return [a for a in everything if a["generator"]["modelSha256"] == SHA][:5]


@pytest.fixture
def store(tmp_path, parsed, built):
    with open_store(tmp_path / "enricher.sqlite3") as store:
        store.key = manifest_key(parsed.id)
        store.save_manifest(store.key, parsed.id, parsed.id, parsed.label, parsed_document(parsed))
        for canvas in parsed.canvases[:2]:
            store.replace_machine_annotations(store.key, canvas.id, SHA, on(canvas.id, built))
        yield store


def parsed_document(parsed) -> dict:
    return copy.deepcopy(parsed.document)


def on(canvas_id: str, annotations: list[dict]) -> list[dict]:
    return [a for a in annotations if a["target"]["source"]["id"] == canvas_id]


def judge(store: Store, anno_id: str, verdict: str, reasons=()) -> dict:
    """Record VERDICT on the current version of ANNO_ID, as the web layer does; return the verdict stored."""
    target = store.get(anno_id).document
    document = build_verdict(verdict_id=f"https://enricher.example.org/{store.key}/verdicts/{anno_id[-8:]}{verdict}",
                             target=target, verdict=verdict, creator=CURATOR, created=NOW, reasons=reasons)
    checked = read_verdict(document, [])
    stored = store.add_verdict(store.key, document, "curator", target=checked.target, canvas_id=None,
                               judgement=checked.verdict, version=checked.version)
    return stored.document


def correct(store: Store, machine: dict, box: str, label: str = "wolf") -> dict:
    """A person's correction of MACHINE: a tag with another label and box, replacing it."""
    correction = {
        "id": f"https://enricher.example.org/{store.key}/annotations/fix-{machine['id'][-6:]}",
        "type": "Annotation", "motivation": "tagging", "created": NOW, "modified": NOW, "creator": CURATOR,
        "replaces": machine["id"],
        "body": [{"type": "TextualBody", "value": label, "language": "en", "format": "text/plain", "purpose": "tagging"}],
        "target": {**machine["target"], "selector": {**machine["target"]["selector"], "value": box}},
    }
    return store.create(store.key, correction, "curator").document


def shapes(path: Path) -> Graph:
    return Graph().parse(path)


def conforms(document: dict, shapes_file: Path) -> None:
    graph = Graph().parse(data=rdf.annotation_nquads(document, None), format="nt")
    ok, _, text = validate(graph, shacl_graph=shapes(shapes_file), inference="none")
    assert ok, text


def rerun(store: Store, canvas_id: str, annotations: list[dict]) -> dict[str, int]:
    return store.replace_machine_annotations(store.key, canvas_id, SHA, annotations)


# the documents


def test_verdict_correction_and_exhaustiveness_pass_the_w3c_schemas_and_our_shapes(store, parsed, built, conformance_dir):
    dog, horse = built[0]["id"], built[1]["id"]
    verdict = {"@context": ANNOTATION_CONTEXT, **judge(store, dog, "rejected", ["not-present"])}
    correction = {"@context": ANNOTATION_CONTEXT, **correct(store, store.get(horse).document, "xywh=390,290,260,220")}
    corrected = {"@context": ANNOTATION_CONTEXT, **judge(store, horse, "corrected", ["bad-box"])}
    statement = build_exhaustive(verdict_id=f"https://enricher.example.org/{store.key}/verdicts/e0", canvas_id=parsed.canvases[0].id,
                                 manifest_id=parsed.id, classes=["dog", "horse", "traffic light"], creator=CURATOR, created=NOW)
    statement = {"@context": ANNOTATION_CONTEXT, **statement}
    for document in (verdict, correction, corrected, statement):
        assert_w3c_annotation(document, conformance_dir)
    for document in (verdict, corrected, statement):
        conforms(document, VERDICT_SHAPES)
    reviewed = {"@context": ANNOTATION_CONTEXT, **store.get(dog).document}
    conforms(correction, ANNOTATION_SHAPES)
    conforms(reviewed, ANNOTATION_SHAPES)
    assert reviewed["reviewState"] == state_iri("rejected")
    # what the RDF says: the motivation is oa:assessing, not a relative IRI
    assert f"<{rdf.OA}motivatedBy> <{rdf.OA}assessing>" in rdf.annotation_nquads(verdict, None)


@pytest.mark.parametrize("change", [
    lambda v: v["body"][0].update(subject=state_iri("maybe")),  # not a verdict
    lambda v: v["target"].pop("state"),  # not pinned to a version
    lambda v: v["body"].append({**v["body"][0], "purpose": "commenting"}),  # a reason that is the verdict
])
def test_a_broken_verdict_fails_the_shapes(store, built, change):
    verdict = build_verdict(verdict_id="https://enricher.example.org/v/1", target=store.get(built[0]["id"]).document,
                            verdict="accepted", creator=CURATOR, created=NOW)
    change(verdict)
    graph = Graph().parse(data=rdf.annotation_nquads(verdict, None), format="nt")
    assert not validate(graph, shacl_graph=shapes(VERDICT_SHAPES), inference="none")[0]


def test_read_verdict_says_what_is_judged_and_refuses_what_is_not_a_verdict(parsed):
    canvas = parsed.canvases[0].id
    statement = build_exhaustive(verdict_id="x", canvas_id=canvas, manifest_id=parsed.id, classes=["traffic light"],
                                 creator=CURATOR, created=NOW)
    checked = read_verdict(statement, [canvas])
    assert (checked.verdict, checked.target, checked.canvas_id, checked.classes) == ("exhaustive", None, canvas, ("traffic light",))
    with pytest.raises(InputError) as error:
        read_verdict(statement, ["https://elsewhere.example/canvas/9"])
    assert error.value.pointer == "/target/source"
    statement["body"] = statement["body"][:1]
    with pytest.raises(InputError, match="classes reviewed"):
        read_verdict(statement, [canvas])


def test_helpers_read_boxes_and_classes():
    assert box_of({"target": "https://c.example/1#xywh=1,2,3,4"}) == (1.0, 2.0, 3.0, 4.0)
    assert box_of({"target": {"selector": {"value": "xywh=percent:1,2,3,4"}}}) is None
    assert box_of({"target": [{"selector": [{"value": "xywh=pixel:-2,-1.5,3,4"}]}]}) == (-2.0, -1.5, 3.0, 4.0)
    assert box_of({"target": "https://c.example/1"}) is None
    assert box_of({"target": "https://c.example/1#xywh=1..2,2,3,4"}) is None  # was a ValueError
    assert class_of({"body": [{"purpose": "tagging", "value": "Hund", "language": "de"}]}) == "dog"
    assert class_of({"body": [{"value": "x"}, {"subject": "https://w3id.org/enricher/coco/traffic_light"}]}) == "traffic light"


# the store


def test_a_verdict_sets_the_review_state_in_one_change_set_and_pins_the_version(store, built):
    dog = built[0]["id"]
    before = store.get(dog)
    assert before.review_state == "pending" and before.document["reviewState"] == state_iri("pending")
    last = store.last_change()
    verdict = judge(store, dog, "accepted")
    after = store.get(dog)
    assert after.review_state == "accepted" and after.etag != before.etag
    assert version_of(after.document) == version_of(before.document)  # a verdict is not an edit
    assert [(c.kind, c.anno_id) for c in store.changes(last, 10)] == [("Create", verdict["id"]), ("Update", dog)]
    assert [v.id for v in store.verdicts_on(dog)] == [verdict["id"]]

    stale = build_verdict(verdict_id="https://enricher.example.org/v/stale", target={**after.document, "created": "2000-01-01T00:00:00Z"},
                          verdict="rejected", creator=CURATOR, created=NOW)
    with pytest.raises(StaleVersion):
        store.add_verdict(store.key, stale, "curator", target=dog, canvas_id=None, judgement="rejected",
                          version="2000-01-01T00:00:00Z")
    assert store.get(dog).review_state == "accepted" and store.get("https://enricher.example.org/v/stale") is None
    with pytest.raises(InputError):  # a verdict judges machine annotations of its own manifest only
        store.add_verdict("0" * 16, {**stale, "id": "https://enricher.example.org/v/other"}, "curator", target=dog,
                          canvas_id=None, judgement="accepted", version=version_of(after.document))


def test_retracting_falls_back_to_the_previous_verdict(store, built):
    dog = built[0]["id"]
    first = judge(store, dog, "accepted")
    second = judge(store, dog, "rejected")
    assert store.get(dog).review_state == "rejected"
    store.retract_verdict(second["id"], None)
    assert store.get(dog).review_state == "accepted" and store.get(second["id"]).deleted
    store.retract_verdict(first["id"], None)
    assert store.get(dog).review_state == "pending"
    assert store.get(dog).document["reviewState"] == state_iri("pending")


def test_the_public_view_leaves_out_rejected_and_replaced(store, parsed, built):
    canvas = parsed.canvases[0].id
    dog, horse, person = (a["id"] for a in built[:3])
    judge(store, dog, "rejected")
    fix = correct(store, store.get(horse).document, "xywh=390,290,260,220")
    judge(store, horse, "corrected")
    judge(store, person, "accepted")
    public = [a.id for a in store.canvas_annotations(store.key, canvas, public=True)]
    assert public == [person, fix["id"]]
    assert [a.id for a in store.canvas_annotations(store.key, canvas)] == [dog, horse, person, fix["id"]]
    assert store.count(store.key) == len(built) + 1 and store.count(store.key, "verdict") == 3


def test_a_rerun_after_review_freezes_reviewed_suppresses_rejected_and_updates_pending(store, parsed, built):
    canvas0, canvas1 = parsed.canvases[0].id, parsed.canvases[1].id
    dog, horse, person = built[:3]
    judge(store, dog["id"], "rejected")
    judge(store, horse["id"], "accepted")
    frozen = {a: store.get(a).etag for a in (dog["id"], horse["id"])}

    def moved(annotation: dict, dx: int, score: float) -> dict:
        """The same detection a little to the right, with another score (a new id, as a re-run makes)."""
        x, y, w, h = (int(v) for v in annotation["target"]["selector"]["value"][5:].split(","))
        shifted = copy.deepcopy(annotation)
        shifted["id"] = annotation["id"][:-6] + "moved0"
        shifted["target"]["selector"]["value"] = f"xywh={x + dx},{y},{w},{h}"
        shifted["confidence"] = score
        return shifted

    again = [moved(dog, 10, 0.95), moved(horse, 10, 0.5), moved(person, 5, 0.6)]
    assert rerun(store, canvas0, again) == {"created": 0, "updated": 1, "deleted": 0, "kept": 2}
    assert {a: store.get(a).etag for a in frozen} == frozen  # reviewed: untouched
    assert store.get(again[0]["id"]) is None  # the rejected dog did not come back under a new id
    updated = store.get(person["id"])  # pending: same id, the new box and score
    assert updated.document["confidence"] == 0.6 and updated.document["target"]["selector"]["value"] == again[2]["target"]["selector"]["value"]
    assert updated.review_state == "pending" and updated.document["modified"]
    # a detection that overlaps the rejected dog but is another class is new
    cat = {**moved(dog, 0, 0.7), "id": dog["id"][:-6] + "catcat",
           "body": [{"type": "TextualBody", "value": "cat", "language": "en", "format": "text/plain", "purpose": "tagging"}]}
    assert rerun(store, canvas0, [*again, cat])["created"] == 1
    # a run that finds nothing retires only the pending ones
    assert rerun(store, canvas0, []) == {"created": 0, "updated": 0, "deleted": 2, "kept": 0}
    assert not store.get(dog["id"]).deleted and not store.get(horse["id"]).deleted
    assert store.get(person["id"]).deleted and store.get(cat["id"]).deleted
    assert rerun(store, canvas1, on(canvas1, built)) == {"created": 0, "updated": 0, "deleted": 0, "kept": 2}


def test_a_correction_freezes_its_region_too(store, parsed, built):
    canvas0 = parsed.canvases[0].id
    horse = store.get(built[1]["id"]).document
    correct(store, horse, "xywh=600,300,250,200", label="horse")  # the horse is further right
    judge(store, built[1]["id"], "corrected")
    near_the_correction = copy.deepcopy(built[1])
    near_the_correction["id"] = built[1]["id"][:-6] + "right0"
    near_the_correction["target"]["selector"]["value"] = "xywh=590,300,250,200"
    counts = rerun(store, canvas0, [built[0], built[2], near_the_correction])
    assert counts["created"] == 0 and store.get(near_the_correction["id"]) is None


def test_an_old_database_gains_review_states(tmp_path, built):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    for migration in STEPS[:3]:
        for statement in migration:
            old.execute(statement)
    document = {k: v for k, v in built[0].items() if k != "@context"}
    old.execute(
        """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, document, version, etag, created, modified)
        VALUES (?, 'k', ?, ?, 'machine', ?, 1, '"x"', 't', 't')""",
        (document["id"], document["target"]["source"]["id"], SHA, json.dumps(document)),
    )
    old.execute("PRAGMA user_version = 3")
    old.commit()
    old.close()
    with open_store(path) as store:
        stored = store.get(document["id"])
        assert stored.review_state == "pending" and stored.document["reviewState"] == state_iri("pending")
        assert stored.etag != '"x"' and store.count("k") == 1 and store.count("k", "verdict") == 0


def test_an_old_database_gains_regions_and_reviewed_classes(tmp_path, parsed, built):
    """Migration 5 fills the region, score and classes columns of existing rows, so ground truth and
    predictions read from an upgraded file are what they would be from a new one."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    for migration in STEPS[:4]:
        for statement in migration:
            old.execute(statement)
    key, canvas = manifest_key(parsed.id), parsed.canvases[0]
    old.execute("INSERT INTO manifests VALUES (?, ?, ?, ?, ?, 't')",
                (key, parsed.id, parsed.id, parsed.label, json.dumps(parsed.document)))
    row = """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, document, version, etag, created,
        modified, role, review_state, concept) VALUES (?, ?, ?, ?, ?, ?, 1, '"x"', 't', 't', ?, ?, ?)"""
    dog = {k: v for k, v in built[0].items() if k != "@context"}
    old.execute(row, (dog["id"], key, canvas.id, SHA, "machine", json.dumps(dog), "annotation", "accepted", None))
    statement = build_exhaustive(verdict_id="https://enricher.example.org/v/x", canvas_id=canvas.id,
                                 manifest_id=parsed.id, classes=["dog", "cat"], creator=CURATOR, created=NOW)
    old.execute(row, (statement["id"], key, canvas.id, None, "human", json.dumps(statement), "verdict", "exhaustive", None))
    old.execute("PRAGMA user_version = 4")
    old.commit()
    old.close()
    with open_store(path) as store:
        [truth] = reviewed_canvases(store)
        [found] = predictions(store, SHA, [canvas.id])
        assert store.get(dog["id"]).concept == "dog"  # rows from before the class column get theirs
    assert truth.labels == {"dog", "cat"} and truth.canvas_id == canvas.id
    assert [(b.label, b.box, b.annotation_id) for b in truth.boxes] == [("dog", box_of(dog), dog["id"])]
    assert (found.label, found.box, found.score) == ("dog", box_of(dog), dog["confidence"])


# ground truth


def test_reviewed_canvases_and_predictions(store, parsed, built):
    canvas0, canvas1 = parsed.canvases[0].id, parsed.canvases[1].id
    dog, horse, person = (a["id"] for a in built[:3])
    judge(store, dog, "accepted")
    judge(store, horse, "rejected")
    fix = correct(store, store.get(person).document, "xywh=12,12,50,118", label="person")
    judge(store, person, "corrected")
    assert reviewed_canvases(store) == []
    statement = build_exhaustive(verdict_id=f"https://enricher.example.org/{store.key}/verdicts/e1", canvas_id=canvas0,
                                 manifest_id=parsed.id, classes=["dog", "horse", "person"], creator=CURATOR, created=NOW)
    store.add_verdict(store.key, statement, "curator", target=None, canvas_id=canvas0, judgement="exhaustive", version=None)

    [truth] = reviewed_canvases(store)
    assert (truth.manifest_key, truth.canvas_id, truth.canvas_index, truth.width, truth.height) == (store.key, canvas0, 0, 1000, 800)
    assert truth.labels == {"dog", "horse", "person"} and truth.image_service == parsed.canvases[0].service_id
    assert {(b.label, b.box, b.annotation_id) for b in truth.boxes} == {
        ("dog", box_of(store.get(dog).document), dog), ("person", (12.0, 12.0, 50.0, 118.0), fix["id"])}
    assert reviewed_canvases(store, keys=["0" * 16]) == []

    found = predictions(store, SHA, [canvas0])
    assert {(p.annotation_id, p.label) for p in found} == {(dog, "dog"), (horse, "horse"), (person, "person")}
    assert {p.score for p in found} == {a["confidence"] for a in built[:3]}
    assert predictions(store, SHA, [canvas1]) and predictions(store, "f" * 64, [canvas0]) == []


def test_the_direct_rdf_reader_reads_the_review_terms_as_pyld_does(store, built, conformance_dir):
    from rdflib.compare import isomorphic

    from enricher.jsonld import to_graph

    dog = {**store.get(built[0]["id"]).document, "replaces": "https://enricher.example.org/k/annotations/old",
           "calibratedConfidence": 0.8125, "calibration": "https://enricher.example.org/calibrations/c1"}
    rdf._fast_triples(dog)  # no fallback to pyld (about fifty times slower) for what every machine annotation has
    direct = Graph().parse(data=rdf.annotation_nquads(dog, None), format="nt")
    assert isomorphic(direct, to_graph({"@context": ANNOTATION_CONTEXT, **dog}, conformance_dir))
    assert (URIRef(dog["id"]), URIRef(rdf.ENRICHER_NS + "reviewState"), URIRef(state_iri("pending"))) in direct
