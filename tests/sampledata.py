"""The bundled samples as test data: the generated scenes, their ground truth, and matching helpers."""

from __future__ import annotations

import json

from PIL import Image

from enricher.datafiles import DEMO_IMAGES as SAMPLES
from enricher.detect import Detection
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


def matched(found: list[Detection], expected: list[Detection]) -> bool:
    """True when each expected detection has its own found one of the same label, box (IoU >= 0.9) and
    score (within 0.02): exported models compute the same network in another runtime, so only rounding
    may differ."""
    left = list(found)
    for want in expected:
        hit = next((d for d in left if d.label == want.label and iou(d.box, want.box) >= 0.9
                    and abs(d.score - want.score) <= 0.02), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left
