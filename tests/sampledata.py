"""The bundled samples as test data: the generated scenes, their ground truth, and matching helpers."""

from __future__ import annotations

import json

from PIL import Image

from enricher.datafiles import DEMO_IMAGES as SAMPLES

TRUTH = json.loads((SAMPLES / "truth.json").read_text())
SCENES = sorted(name for name in TRUTH if name.startswith("scene-"))


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def recall(found, truth, scale: float = 1.0) -> float:
    """Share of true objects matched by a detection of the same label with IoU >= 0.5."""
    hits = 0
    for obj in truth:
        box = [v * scale for v in obj["box"]]
        hits += any(d.label == obj["label"] and iou(d.box, box) >= 0.5 for d in found)
    return hits / len(truth)


def specs(names):
    return [(name.rsplit(".", 1)[0], *Image.open(SAMPLES / name).size) for name in names]
