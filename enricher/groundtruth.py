"""What curators confirmed, as evaluation and training data: reviewed canvases and the machine's boxes on them.

Boxes are canvas coordinates ``(x, y, w, h)``; ``label`` is the model's class name (e.g. ``"dog"``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .errors import EnricherError
from .geometry import Box
from .manifest import Manifest, parse_manifest
from .rights import rights_statement
from .store import Store

log = logging.getLogger(__name__)


# named tuples: an evaluation makes one of these per box and detection, a hundred thousand of them and
# more, and a tuple is made in less than half the time of a frozen dataclass (one setattr call per field)
class TruthBox(NamedTuple):
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


class Prediction(NamedTuple):
    """One machine detection on a canvas, whatever its review state (rejected ones are false positives)."""

    canvas_id: str
    label: str
    box: Box
    score: float
    annotation_id: str


def reviewed_canvases(store: Store, keys: Sequence[str] | None = None) -> list[TruthCanvas]:
    """Return the canvases curators stated they reviewed exhaustively (of these containers), in order.

    LABELS are the classes the statements on a canvas name (together); BOXES the accepted machine
    annotations, the corrections and the person-made or person-edited tags of those classes that are
    live there now. A canvas its stored manifest no longer lists is left out.
    """
    labels: dict[str, dict[str, set[str]]] = {}  # key -> canvas id -> class names, in statement order
    names: dict[str, str] = {}  # one string object per class name, not one per row
    for key, canvas_id, classes in store.exhaustive_classes(keys):
        labels.setdefault(key, {}).setdefault(canvas_id, set()).update(names.setdefault(c, c) for c in classes)
    boxes: dict[tuple[str, str], list[TruthBox]] = {}
    for key, canvas_id, anno_id, concept, x, y, w, h in store.confirmed_boxes(keys):
        if concept in labels.get(key, {}).get(canvas_id, ()):
            boxes.setdefault((key, canvas_id), []).append(TruthBox(names[concept], (x, y, w, h), anno_id))
    canvases = []
    for key, reviewed in labels.items():
        manifest, rights = _manifest(store, key)
        by_id = {c.id: c for c in reversed(manifest.canvases)} if manifest else {}
        for canvas_id, names in reviewed.items():
            if (canvas := by_id.get(canvas_id)) is not None:
                canvases.append(TruthCanvas(
                    manifest_key=key, manifest_id=manifest.id, canvas_id=canvas_id, canvas_index=canvas.index,
                    width=canvas.width, height=canvas.height, image_service=canvas.service_id,
                    image_url=canvas.image_url, labels=frozenset(names), boxes=tuple(boxes.get((key, canvas_id), ())),
                    rights=rights,
                ))
    return canvases


def predictions(store: Store, model_sha256: str, canvas_ids: Collection[str]) -> list[Prediction]:
    """Return every live machine annotation of a model on these canvases, whatever its review state."""
    # the predictions share the given canvas ids' and one per class name's string objects: a hundred
    # thousand copies of each would be a fifth of an evaluation's memory
    wanted, names = {canvas_id: canvas_id for canvas_id in canvas_ids}, {}
    return [Prediction(wanted[canvas_id], names.setdefault(label, label), (x, y, w, h), score, anno_id)
            for canvas_id, anno_id, label, score, x, y, w, h in store.machine_detections(model_sha256)
            if canvas_id in wanted]


def _manifest(store: Store, key: str) -> tuple[Manifest | None, str | None]:
    """The stored manifest KEY, parsed, and its rights statement (v3 ``rights``, v2 ``license``)."""
    stored = store.manifest(key)
    if stored is None:
        return None, None
    try:
        manifest = parse_manifest(stored.document, stored.url)
    except EnricherError as exc:
        log.warning("ground truth leaves manifest %s out: %s", key, exc)
        return None, None
    return manifest, rights_statement(stored.document)
