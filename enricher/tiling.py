"""Merge what sliced inference saw, full-resolution tiles plus one pass over the whole image, into one
detection per object.

This follows SAHI's sliced prediction with its defaults (``get_sliced_prediction``: a standard pass over
the whole image, ``GREEDYNMM`` merging, matched by intersection over the smaller box (IoS) at 0.5 within
each class, merged score the highest) on a few numpy arrays instead of installing ``sahi``, which brings
opencv, shapely and matplotlib. It goes further where tiles see only pieces or parts of objects:

1. Pieces. A box that reaches an interior border of its tile (one that is not the edge of the image or
   region) and lies mostly inside (IoS >= MATCH) a larger complete box (one reaching no interior border)
   of any view and any label is dropped: that view saw the object whole, and a piece the model named
   otherwise goes with it. Pieces of one class that no view saw whole are joined by the merging.
2. Parts. A box of a finer view lying mostly inside a box of a coarser view (the whole-image pass) is
   dropped when no complete box of a finer view shows the same object (IoU >= REFINE, or every edge within
   SLACK pixels of the coarse view, whose boxes of small objects are loose): no tile saw
   that object whole, so what the tiles found on it are parts, which a model names as other, smaller
   things. The cost: a small object lying on an object larger than a tile is dropped with the parts.
3. Merging. A merged group takes the union of its boxes as SAHI does, except a box that a finer view
   of the same object replaces (a complete box at a higher resolution showing it, as in rule 2): a tile's
   full-resolution box is not widened by the whole-image pass's coarse box of the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .detect import Detection
from .geometry import Box
from .imageapi import ImageRequest, Region

MATCH = 0.5  # IoS at which two boxes are one object: SAHI's postprocess_match_threshold
REFINE = 0.5  # IoU at which a finer complete box shows the object of a coarser one ...
SLACK = 4  # ... or when every edge lies within this many pixels of the coarse view (its boxes are loose)
FINER = 1.01  # a view is finer than another when its resolution is this many times higher
BORDER = 0.01  # a box this close to a border, as a fraction of its tile's long side, reaches it


def merge_passes(requests: Sequence[ImageRequest], found: Sequence[Sequence[Detection]]) -> list[Detection]:
    """Merge the detections FOUND in each of REQUESTS (boxes in image pixels) into one per object,
    strongest first. The union of the requests' regions is the area searched: its edges cut nothing."""
    seen = [(det, request) for request, detections in zip(requests, found) for det in detections]
    if not seen:
        return []
    bounds = _outline([request.region for request in requests])
    boxes = np.array([_corners(det.box) for det, _ in seen], dtype=float)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    scores = np.array([det.score for det, _ in seen])
    labels = np.array([det.label for det, _ in seen])
    cut = np.array([_reaches_interior_border(det.box, request.region, bounds) for det, request in seen])
    resolution = np.array([request.size[0] / request.region[2] for _, request in seen])

    def shown_finer(i: int, among: np.ndarray) -> bool:
        """Whether a complete box AMONG those of views finer than box I's shows box I's object."""
        _, iou = _overlaps(boxes, area, i)
        slack = SLACK / resolution[i]
        close = np.all(np.abs(boxes - boxes[i]) <= slack, axis=1)
        return bool(np.any(among & ~cut & (resolution > resolution[i] * FINER) & ((iou >= REFINE) | close)))

    everything = np.ones(len(seen), dtype=bool)
    alive = everything.copy()
    for i in np.flatnonzero(cut):  # rule 1: pieces
        ios, _ = _overlaps(boxes, area, i)
        alive[i] = not np.any((ios >= MATCH) & (area > area[i]) & ~cut)
    for i in np.flatnonzero(~cut & (resolution < resolution.max())):  # rule 2: parts
        if not shown_finer(i, everything):
            ios, _ = _overlaps(boxes, area, i)
            alive &= ~((resolution > resolution[i] * FINER) & (ios >= MATCH) & (area < area[i]))

    merged: list[Detection] = []
    for i in np.argsort(-scores, kind="stable"):  # rule 3: greedy non-maximum merging per class
        if not alive[i]:
            continue
        ios, _ = _overlaps(boxes, area, i)
        group = alive & (labels == labels[i]) & (ios >= MATCH)
        group[i] = True
        alive &= ~group
        kept = [m for m in np.flatnonzero(group) if not shown_finer(m, group)]
        x0, y0 = boxes[kept, 0].min(), boxes[kept, 1].min()
        x1, y1 = boxes[kept, 2].max(), boxes[kept, 3].max()
        box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        merged.append(Detection(str(labels[i]), float(scores[group].max()), box))
    return merged


def _overlaps(boxes: np.ndarray, area: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Intersection over the smaller box and over the union of box I with every box."""
    width = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
    inter = width * height
    with np.errstate(divide="ignore", invalid="ignore"):
        ios = np.nan_to_num(inter / np.minimum(area[i], area))
        iou = np.nan_to_num(inter / (area[i] + area - inter))
    return ios, iou


def _corners(box: Box) -> Box:
    x, y, w, h = box
    return x, y, x + w, y + h


def _outline(regions: Sequence[Region]) -> tuple[int, int, int, int]:
    """The corners of the smallest rectangle holding every region."""
    return (
        min(r[0] for r in regions),
        min(r[1] for r in regions),
        max(r[0] + r[2] for r in regions),
        max(r[1] + r[3] for r in regions),
    )


def _reaches_interior_border(box: Box, window: Region, bounds: tuple[int, int, int, int]) -> bool:
    """Whether BOX reaches a border of WINDOW that lies inside BOUNDS (so the border may cut an object)."""
    x0, y0, x1, y1 = _corners(box)
    wx0, wy0, wx1, wy1 = _corners(window)
    margin = BORDER * max(window[2], window[3])
    return (
        (wx0 > bounds[0] and x0 <= wx0 + margin)
        or (wy0 > bounds[1] and y0 <= wy0 + margin)
        or (wx1 < bounds[2] and x1 >= wx1 - margin)
        or (wy1 < bounds[3] and y1 >= wy1 - margin)
    )
