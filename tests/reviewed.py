"""A store holding one manifest reviewed by a curator through the store's own API: machine annotations
built by annotate.build_annotation, verdicts by enricher.review, a person's addition. The expected
counts at threshold 0.5 are worked out by hand in EXPECTED."""

from __future__ import annotations

from factories import make_manifest

from enricher.annotate import Generator, build_annotation, manifest_key
from enricher.detect import Detection
from enricher.manifest import parse_manifest
from enricher.review import build_exhaustive, build_verdict, class_iri, version_of
from enricher.store import Store
from enricher.vocab import Vocabulary

SHA = "5" * 64
MODEL = "demo-yolo.pt"
CURATOR = {"type": "Person", "name": "Curator"}

# (canvas, label, score, box, verdict). Canvas 0 is reviewed for dog and cat, canvas 1 for dog only.
MACHINE = [
    (0, "dog", 0.90, (10, 10, 50, 50), "accepted"),   # truth and TP
    (0, "dog", 0.80, (100, 10, 40, 40), "rejected"),  # FP
    (0, "cat", 0.60, (120, 50, 30, 30), "accepted"),  # truth and TP
    (0, "cat", 0.30, (20, 60, 20, 20), None),         # below the threshold: not counted
    (0, "horse", 0.70, (150, 5, 40, 40), None),       # class not reviewed on canvas 0: left out
    (1, "dog", 0.95, (10, 10, 60, 60), "accepted"),   # truth and TP
    (1, "dog", 0.55, (120, 20, 50, 50), None),        # pending, no truth there: FP
]
ADDED = (0, "cat", (60, 60, 30, 30))  # a cat the model missed, added by the curator: FN
REVIEWED = {0: ("dog", "cat"), 1: ("dog",)}
EXPECTED = {  # label: (truths, detections, TP, FP, FN)
    "dog": (2, 4, 2, 2, 0),
    "cat": (2, 1, 1, 0, 1),
    "all": (4, 5, 3, 2, 1),
}


def fill(store: Store, config, image_base: str = "http://images.example.org") -> tuple[str, list[dict]]:
    """Fill STORE; return the manifest key and the machine annotations as stored (in MACHINE order)."""
    document = make_manifest(3, [("a", 200, 100), ("b", 200, 100)], image_base)
    manifest = parse_manifest(document, document["id"])
    key = manifest_key(manifest.id)
    store.save_manifest(key, manifest.id, document["id"], "reviewed", document)
    vocabulary = Vocabulary.load()
    generator = Generator("test", MODEL, SHA)
    built = [build_annotation(canvas=manifest.canvases[c], manifest=manifest, detection=Detection(label, score, box),
                              mapping=vocabulary.lookup(label), generator=generator,
                              created="2025-01-01T00:00:00Z", config=config)
             for c, label, score, box, _ in MACHINE]
    for index, canvas in enumerate(manifest.canvases):
        store.replace_machine_annotations(key, canvas.id, SHA, [a for a, m in zip(built, MACHINE) if m[0] == index])
    stored = [store.get(a["id"]).document for a in built]
    for n, (annotation, (_, _, _, _, verdict)) in enumerate(zip(stored, MACHINE)):
        if verdict:
            document = build_verdict(verdict_id=f"{key}-v{n}", target=annotation, verdict=verdict, creator=CURATOR,
                                     created="2025-01-02T00:00:00Z")
            store.add_verdict(key, document, "curator", target=annotation["id"], canvas_id=None, judgement=verdict,
                              version=version_of(annotation))
    canvas = manifest.canvases[ADDED[0]]
    x, y, w, h = ADDED[2]
    store.create(key, {
        "id": f"{config.base_url}{key}/annotations/added", "type": "Annotation", "motivation": "tagging",
        "body": [{"type": "TextualBody", "value": ADDED[1], "purpose": "tagging", "subject": class_iri(ADDED[1])}],
        "target": {"type": "SpecificResource", "source": {"id": canvas.id, "type": "Canvas"},
                   "selector": {"type": "FragmentSelector", "value": f"xywh={x},{y},{w},{h}"}},
    }, "curator")
    for index, classes in REVIEWED.items():
        canvas = manifest.canvases[index]
        statement = build_exhaustive(verdict_id=f"{key}-x{index}", canvas_id=canvas.id, manifest_id=manifest.id,
                                     classes=classes, creator=CURATOR, created="2025-01-03T00:00:00Z")
        store.add_verdict(key, statement, "curator", target=None, canvas_id=canvas.id, judgement="exhaustive",
                          version=None)
    return key, stored
