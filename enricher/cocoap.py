"""COCO average precision: pycocotools' COCOeval matches each canvas and class; its per-image
results are read here into COCOeval's precision table with whole-array numpy operations.

``read_results`` gives exactly the values of ``COCOeval.accumulate``'s ``eval["precision"]`` for the
one area range and detection cap ``run_cocoeval`` sets (no image holds more detections than the cap,
so accumulate's cut at the cap takes none away): the same scores, sort, matches and cumulative sums,
and the same precision envelope (each point the highest precision at any later one). It gathers a
class's per-image arrays whole, not cut to the cap one by one (a view per image and array), and takes
the envelope as a running maximum instead of accumulate's Python loop over every detection of every
class and IoU threshold.
"""

from __future__ import annotations

import contextlib
import io
from itertools import chain

import numpy as np


def run_cocoeval(images: list[dict], categories: list[dict], truth: list[dict], found: list[dict]):
    """Run COCOeval (bbox, one area range, no detection cap) on COCO records of images, categories,
    truth and detections (ids: 1-based positions); return it evaluated, not accumulated."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def dataset(annotations: list[dict]) -> COCO:
        coco = COCO()
        coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
        coco.createIndex()
        return coco

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        detected = dataset(found)
        engine = COCOeval(dataset(truth), detected, "bbox")
        engine.params.areaRng, engine.params.areaRngLbl = [[0.0, 1e10]], ["all"]
        # COCO caps at 100 detections per image and class; a tiled canvas may hold more. A cap no
        # image reaches (its detections of all classes) is no cap, counted from COCO's own index.
        engine.params.maxDets = [max(100, max(map(len, detected.imgToAnns.values()), default=0))]
        engine.evaluate()
    return engine


def read_results(engine, detections: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an ENGINE evaluated by ``run_cocoeval``: return COCOeval.accumulate's precision, indexed
    [IoU threshold, recall point, class] (-1 for a class without truth), and for each detection id
    1..DETECTIONS (at position id - 1) the id of the truth box it matched at the first IoU threshold
    (0: none)."""
    params = engine.params
    thresholds, classes, images = len(params.iouThrs), len(params.catIds), len(params.imgIds)
    table = -np.ones((thresholds, len(params.recThrs), classes))
    match = np.zeros(detections, dtype=np.int64)
    # evalImgs holds one result per class and image (None: neither truth nor detections), class by
    # class: each class's results are one stretch, their arrays gathered in one call per class
    where = [n for n, e in enumerate(engine.evalImgs) if e is not None]
    found, kind = [engine.evalImgs[n] for n in where], np.asarray(where, dtype=np.intp) // images
    for k in range(classes):
        mine = found[np.searchsorted(kind, k):np.searchsorted(kind, k, "right")]
        if not mine:
            continue
        ids = np.fromiter(chain.from_iterable(e["dtIds"] for e in mine), np.int64)
        matched = np.concatenate([e["dtMatches"] for e in mine], axis=1)  # [IoU threshold, detection]
        match[ids - 1] = matched[0]
        truths = np.count_nonzero(np.concatenate([e["gtIgnore"] for e in mine]) == 0)
        if truths == 0:  # accumulate leaves a class without truth counted at -1
            continue
        scores = np.fromiter(chain.from_iterable(e["dtScores"] for e in mine), float, len(ids))
        ignored = np.concatenate([e["dtIgnore"] for e in mine], axis=1)
        order = np.argsort(-scores, kind="mergesort")  # accumulate's sort: ties keep their order
        hit, skip = matched[:, order], ignored[:, order]
        tp = np.cumsum(np.logical_and(hit, np.logical_not(skip)), axis=1).astype(float)
        fp = np.cumsum(np.logical_and(np.logical_not(hit), np.logical_not(skip)), axis=1).astype(float)
        recall = tp / truths
        precision = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[:, ::-1], axis=1)[:, ::-1]
        for t in range(thresholds):
            at = np.searchsorted(recall[t], params.recThrs, side="left")
            reached = at < tp.shape[1]  # recall points past the last detection keep precision 0
            table[t, :, k] = 0.0
            table[t, reached, k] = precision[t, at[reached]]
    return table, match
