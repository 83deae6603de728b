"""Real annotations for the linked-data tests: built by annotate.build_annotation with the real COCO
vocabulary on parsed test manifests, plus the shapes the protocol stores for people (a comment a
curator posted, a machine annotation a curator corrected)."""

from __future__ import annotations

import copy

from factories import make_manifest

from enricher import __version__
from enricher.annotate import Generator, build_annotation
from enricher.detect import Detection
from enricher.manifest import Manifest, parse_manifest
from enricher.vocab import Vocabulary

SHA = "0123456789abcdef" * 4
OTHER_SHA = "fedcba9876543210" * 4
CREATED = "2024-05-01T12:00:00Z"
MODIFIED = "2024-06-02T08:30:00Z"
GENERATOR = Generator(__version__, "yolo11n.pt", SHA)
OTHER_GENERATOR = Generator(__version__, "yolo11x.pt", OTHER_SHA)
IMAGES = "https://images.example.org/iiif"
# (canvas, class, score, box, generator): dogs and horses share canvas 0 only; cat and bear elsewhere
DETECTIONS = (
    (0, "dog", 0.91234, (100.4, 50.2, 200.5, 120.0), GENERATOR),
    (0, "horse", 0.85, (400, 300, 250, 200), GENERATOR),
    (0, "person", 0.42, (10, 10, 50, 120), GENERATOR),
    (1, "dog", 0.55, (5, 5, 40, 40), GENERATOR),
    (1, "bear", 0.97, (100, 100, 200, 150), GENERATOR),
    (2, "horse", 0.81, (0, 0, 480, 300), OTHER_GENERATOR),
    (2, "traffic light", 1.0, (20, 30, 10, 25), GENERATOR),
    (2, "an unmapped class", 0.0, (1, 2, 3, 4), GENERATOR),
    (3, "giraffe", 0.88, (50, 60, 70, 80), OTHER_GENERATOR),
    (3, "zebra", 0.79, (150, 60, 70, 80), GENERATOR),
    (3, "bird", 0.99, (300, 20, 30, 20), GENERATOR),
)


def manifest(version: int = 3) -> Manifest:
    """A parsed test manifest with four canvases."""
    sizes = [("a", 1000, 800), ("b", 500, 500), ("c", 640, 480), ("d", 800, 600)]
    document = make_manifest(version, sizes, IMAGES)
    return parse_manifest(document, document.get("id") or document["@id"])


def machine_annotations(config, vocabulary: Vocabulary, parsed: Manifest | None = None) -> list[dict]:
    """One annotation per entry of DETECTIONS, as a job builds them (with @context)."""
    parsed = parsed or manifest()
    return [
        build_annotation(
            canvas=parsed.canvases[canvas], manifest=parsed, detection=Detection(label, score, box),
            mapping=vocabulary.lookup(label), generator=generator, created=CREATED, config=config,
        )
        for canvas, label, score, box, generator in DETECTIONS
    ]


def corrected(annotation: dict, nickname: str = "curator") -> dict:
    """ANNOTATION as the protocol stores it after a person changed its label (creator, modified)."""
    edited = copy.deepcopy(annotation)
    edited["body"][0]["value"] = "wolf"
    edited["creator"] = {"type": "Person", "nickname": nickname}
    edited["modified"] = MODIFIED
    return edited


def comment(parsed: Manifest, anno_id: str, nickname: str = "curator") -> dict:
    """An annotation a person posted: a comment on a region, with their name, quotes and a newline."""
    canvas = parsed.canvases[1]
    return {
        "id": anno_id,
        "type": "Annotation",
        "motivation": "commenting",
        "created": CREATED,
        "modified": CREATED,
        "creator": {"type": "Person", "nickname": nickname},
        "via": "https://client.example.org/notes/1",
        "body": [{"type": "TextualBody", "value": 'a "brown" bear\\n\nnot a dog – ours', "format": "text/plain",
                  "language": "en"}],
        "target": {
            "type": "SpecificResource",
            "source": {"id": canvas.id, "type": "Canvas", "partOf": [{"id": parsed.id, "type": "Manifest"}]},
            "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                         "value": "xywh=1,2,3,4"},
        },
    }
