"""The bundled samples as test data: the generated scenes, their ground truth, and matching helpers."""

from __future__ import annotations

import json

from PIL import Image

from enricher.datafiles import DEMO_IMAGES as SAMPLES
from enricher.geometry import iou

TRUTH = json.loads((SAMPLES / "truth.json").read_text())
SCENES = sorted(name for name in TRUTH if name.startswith("scene-"))


def recall(found, truth, scale: float = 1.0) -> float:
    """Share of true objects matched by a detection of the same label with IoU >= 0.5."""
    hits = 0
    for obj in truth:
        box = [v * scale for v in obj["box"]]
        hits += any(d.label == obj["label"] and iou(d.box, box) >= 0.5 for d in found)
    return hits / len(truth)


def specs(names):
    return [(name.rsplit(".", 1)[0], *Image.open(SAMPLES / name).size) for name in names]
