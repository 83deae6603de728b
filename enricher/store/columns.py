"""The columns of an annotation's row derived from its document, which every write of both backends
fills: its region and confidence, and the classes an exhaustiveness statement names."""

from __future__ import annotations

from ..review import EXHAUSTIVE, box_of, classes_reviewed, state_iri

PENDING = state_iri("pending")


def region_columns(document: dict) -> tuple[float | None, ...]:
    """The columns box_x, box_y, box_w, box_h and score of an annotation: its xywh region (canvas
    coordinates) and its confidence, None where it has none."""
    score = document.get("confidence")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    return (*(box_of(document) or (None,) * 4), score)


def classes_column(document: dict, review_state: str | None) -> str | None:
    """The column classes: the class names an exhaustiveness statement names, one per line."""
    return "\n".join(classes_reviewed(document)) if review_state == EXHAUSTIVE else None
