"""What curators confirmed, as evaluation and training data: reviewed canvases and the machine's boxes on them.

Boxes are canvas coordinates ``(x, y, w, h)``; ``label`` is the model's class name (e.g. ``"dog"``).
"""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TruthBox:
    """One object a curator confirmed (an accepted machine annotation, a correction or a person's addition)."""

    label: str
    box: Box
    annotation_id: str


@dataclass(frozen=True)
class TruthCanvas:
    """A canvas reviewed exhaustively for LABELS: every object of those classes on it is in BOXES."""

    manifest_key: str
    manifest_id: str
    canvas_id: str
    canvas_index: int
    width: int
    height: int
    image_service: str | None
    image_url: str | None
    labels: frozenset[str]
    boxes: tuple[TruthBox, ...]
    rights: str | None = None


@dataclass(frozen=True)
class Prediction:
    """One machine detection on a canvas, whatever its review state (rejected ones are false positives)."""

    canvas_id: str
    label: str
    box: Box
    score: float
    annotation_id: str
