"""A manifest seeded for search tests: machine annotations of several classes on each canvas, built by
annotate.build_annotation as a job builds them, stored through the store a running service uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from factories import make_manifest
from webclient import GENERATOR_SHA, LiveServer

from enricher.annotate import Generator, build_annotation, manifest_key
from enricher.detect import Detection
from enricher.manifest import Manifest, parse_manifest
from enricher.vocab import Vocabulary

# per canvas: class name -> how many boxes
SCENES: tuple[Mapping[str, int], ...] = ({"dog": 2, "bird": 1, "horse": 1}, {"dog": 1, "traffic light": 1}, {"cat": 1})


def seed_classes(server: LiveServer, scenes: Sequence[Mapping[str, int]] = SCENES, version: int = 3,
                 manifest_id: str | None = None, image_base: str = "https://images.example.org/iiif") -> tuple[str, Manifest]:
    """Store a manifest of one canvas per scene and, on each, its boxes (apart, confidence falling);
    return the manifest's key and the parsed manifest."""
    canvases = [(f"scene{n}", 1000, 800) for n in range(len(scenes))]
    document = make_manifest(version, canvases, image_base, manifest_id=manifest_id)
    url = document.get("id") or document["@id"]
    manifest = parse_manifest(document, url)
    key = manifest_key(manifest.id)
    vocabulary = Vocabulary.load()
    generator = Generator("0.1.0", "test-model.pt", GENERATOR_SHA)
    with server.store() as store:
        store.save_manifest(key, manifest.id, url, manifest.label, document)
        for canvas, scene in zip(manifest.canvases, scenes):
            labels = [(label, n) for label, count in scene.items() for n in range(count)]
            detections = [Detection(label, 0.9 - 0.001 * n, (10 + 60 * (k % 15), 10 + 40 * (k // 15), 50, 30))
                          for k, (label, n) in enumerate(labels)]
            annotations = [build_annotation(canvas=canvas, manifest=manifest, detection=d,
                                            mapping=vocabulary.lookup(d.label), generator=generator,
                                            created="2026-01-01T00:00:00Z", config=server.config)
                           for d in detections]
            store.replace_machine_annotations(key, canvas.id, GENERATOR_SHA, annotations)
    return key, manifest
