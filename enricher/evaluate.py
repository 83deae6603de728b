"""Measure a model against ground truth: precision and recall at the publishing threshold, COCO AP.

Scope: a canvas counts only for the classes in its ``TruthCanvas.labels`` (it was reviewed exhaustively
for those); truth boxes and predictions of other classes on it, and predictions on canvases without
truth, are left out.

Matching: pycocotools' COCOeval (bbox, one area range "all", no cap on detections per canvas and class)
matches each class greedily by score, each detection taking the unmatched truth box of highest IoU >=
0.5. Precision and recall read that matching for the detections scoring at least the threshold: being
greedy by score, the matching of those is the same as if the weaker ones were not there.
AP@0.5 and AP@0.5:0.95 are COCOeval's (101-point; its accumulate step's values, read by
``cocoap.read_results``); the overall AP is the mean over classes with truth,
the overall precision and recall are micro-averaged (summed counts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import calibrate
from .annotate import manifest_key
from .cocoap import read_results, run_cocoeval
from .errors import InputError
from .geometry import Box
from .groundtruth import Prediction, TruthBox, TruthCanvas

IOU = 0.5
EXAMPLES = 10  # example errors kept per class and overall
ALL = "all"


@dataclass(frozen=True)
class ErrorLink:
    """One example error: a false positive (a prediction, with its score) or a miss (a truth box)."""

    annotation_id: str
    canvas_id: str
    label: str
    box: Box
    score: float | None = None


@dataclass(frozen=True)
class ClassMetrics:
    """Counts and figures of one class (or of every class, label ``all``)."""

    label: str
    truths: int
    detections: int  # scoring at least the threshold
    tp: int
    fp: int
    fn: int
    precision: float | None  # None when nothing was detected
    recall: float | None  # None when there is no truth
    ap50: float | None  # None when there is no truth
    ap: float | None  # AP@0.5:0.95
    ece: float | None  # expected calibration error of the detections; None when there are none
    false_positives: tuple[ErrorLink, ...]  # highest scores first
    misses: tuple[ErrorLink, ...]
    curve: tuple[float, ...]  # precision at recall 0, 0.01, ..., 1 (IoU 0.5); empty without truth


@dataclass(frozen=True)
class Evaluation:
    """The result of ``evaluate``; ``pairs`` are the calibration input (label, score, matched)."""

    threshold: float
    canvases: int
    manifests: tuple[str, ...]  # manifest ids
    classes: tuple[ClassMetrics, ...]
    overall: ClassMetrics
    pairs: tuple[tuple[str, float, bool], ...]

    def to_dict(self) -> dict:
        """Return plain JSON data (``from_dict`` reads it back)."""
        # dataclasses.asdict deep-copies every pair: a tenth of the whole run on 100,000 detections
        def metrics(m: ClassMetrics) -> dict:
            return {**m.__dict__, "false_positives": [asdict(e) for e in m.false_positives],
                    "misses": [asdict(e) for e in m.misses], "curve": list(m.curve)}

        return {"threshold": self.threshold, "canvases": self.canvases, "manifests": list(self.manifests),
                "classes": [metrics(m) for m in self.classes], "overall": metrics(self.overall),
                "pairs": [list(p) for p in self.pairs]}

    @classmethod
    def from_dict(cls, data: dict) -> "Evaluation":
        """Rebuild an evaluation from ``to_dict`` output."""

        def metrics(item: dict) -> ClassMetrics:
            links = {k: tuple(ErrorLink(**{**e, "box": tuple(e["box"])}) for e in item[k])
                     for k in ("false_positives", "misses")}
            return ClassMetrics(**{**item, **links, "curve": tuple(item["curve"])})

        return cls(
            threshold=data["threshold"], canvases=data["canvases"], manifests=tuple(data["manifests"]),
            classes=tuple(metrics(c) for c in data["classes"]), overall=metrics(data["overall"]),
            pairs=tuple((p[0], p[1], bool(p[2])) for p in data["pairs"]),
        )


def evaluate(truth: Sequence[TruthCanvas], predictions: Sequence[Prediction], threshold: float) -> Evaluation:
    """Evaluate PREDICTIONS against TRUTH, precision and recall counting predictions scoring >= THRESHOLD.

    Raises InputError for no truth canvases, a canvas given twice or a box with negative size.
    """
    if not truth:
        raise InputError("no ground truth: no canvas was reviewed exhaustively", where="ground truth")
    canvases: dict[str, tuple[int, TruthCanvas]] = {}
    for number, canvas in enumerate(truth, 1):
        if canvas.canvas_id in canvases:
            raise InputError("canvas given twice in the ground truth", where=canvas.canvas_id)
        canvases[canvas.canvas_id] = (number, canvas)
    labels = sorted(set().union(*(c.labels for c in truth)))
    category = {label: k + 1 for k, label in enumerate(labels)}
    gts = [(canvas, box) for canvas in truth for box in canvas.boxes if box.label in canvas.labels]
    scope = {canvas_id: c.labels for canvas_id, (_, c) in canvases.items()}
    dts = [p for p in predictions if p.label in scope.get(p.canvas_id, ())]
    negative = [r for r in [b for _, b in gts] + dts if r.box[2] < 0 or r.box[3] < 0]
    if negative:
        raise InputError(f"box {tuple(negative[0].box)} has a negative size", where=negative[0].annotation_id)

    image = {canvas_id: number for canvas_id, (number, _) in canvases.items()}
    # COCO's records built here at once: no intermediate tuples live beside them through COCOeval
    engine = run_cocoeval(
        [{"id": number, "width": c.width, "height": c.height} for number, c in canvases.values()],
        [{"id": k, "name": label} for label, k in category.items()],
        [{"id": n, "image_id": image[c.canvas_id], "category_id": category[b.label], "bbox": list(b.box),
          "area": b.box[2] * b.box[3], "iscrowd": 0} for n, (c, b) in enumerate(gts, 1)],
        [{"id": n, "image_id": image[p.canvas_id], "category_id": category[p.label], "bbox": list(p.box),
          "area": p.box[2] * p.box[3], "iscrowd": 0, "score": p.score} for n, p in enumerate(dts, 1)],
    )
    # precision [iou threshold, recall point, class]; dt_match: 1-based truth index matched at IoU 0.5, 0 if none
    precision, dt_match = read_results(engine, len(dts))
    del engine  # COCOeval's per-image results: the largest thing alive, and no longer needed
    scores = np.array([p.score for p in dts], dtype=float)
    above = scores >= threshold
    gt_found = np.zeros(len(gts), dtype=bool)
    gt_found[dt_match[above & (dt_match > 0)] - 1] = True
    dt_label = np.array([category[p.label] for p in dts], dtype=np.int64)
    gt_label = np.array([category[b.label] for _, b in gts], dtype=np.int64)

    def metrics(label: str, dt_in: np.ndarray, gt_in: np.ndarray, k: int | None) -> ClassMetrics:
        detected, correct = dt_in & above, dt_in & above & (dt_match > 0)
        fp = np.flatnonzero(dt_in & above & (dt_match == 0))
        fp = fp[np.argsort(-scores[fp], kind="stable")][:EXAMPLES]
        missed = np.flatnonzero(gt_in & ~gt_found)
        if k is None:
            valid = [precision[:, :, j] for j in range(precision.shape[2]) if (precision[:, :, j] > -1).any()]
            ap50 = float(np.mean([v[0].mean() for v in valid])) if valid else None
            ap = float(np.mean([v.mean() for v in valid])) if valid else None
            curve: tuple[float, ...] = ()
        else:
            table = precision[:, :, k]
            has_truth = bool((table > -1).any())
            ap50 = float(table[0].mean()) if has_truth else None
            ap = float(table.mean()) if has_truth else None
            curve = tuple(round(float(v), 4) for v in table[0]) if has_truth else ()
        n_det, n_tp, n_gt = int(detected.sum()), int(correct.sum()), int(gt_in.sum())
        n_found = int(gt_found[gt_in].sum())
        return ClassMetrics(
            label=label, truths=n_gt, detections=n_det, tp=n_tp, fp=n_det - n_tp, fn=n_gt - n_found,
            precision=n_tp / n_det if n_det else None, recall=n_found / n_gt if n_gt else None,
            ap50=ap50, ap=ap, ece=calibrate.ece(scores[detected], dt_match[detected] > 0) if n_det else None,
            false_positives=tuple(ErrorLink(dts[i].annotation_id, dts[i].canvas_id, dts[i].label,
                                            tuple(dts[i].box), dts[i].score) for i in fp),
            misses=tuple(ErrorLink(gts[i][1].annotation_id, gts[i][0].canvas_id, gts[i][1].label,
                                   tuple(gts[i][1].box)) for i in missed[:EXAMPLES]),
            curve=curve,
        )

    return Evaluation(
        threshold=float(threshold),
        canvases=len(canvases),
        manifests=tuple(sorted({c.manifest_id for c in truth})),
        classes=tuple(metrics(label, dt_label == k, gt_label == k, k - 1) for label, k in category.items()),
        overall=metrics(ALL, np.ones(len(dts), dtype=bool), np.ones(len(gts), dtype=bool), None),
        pairs=tuple(zip([dts[i].label for i in np.flatnonzero(above)], scores[above].tolist(),
                        (dt_match[above] > 0).tolist())),
    )


def read_coco(path: str | Path) -> list[TruthCanvas]:
    """Read a COCO detection file as ground truth, one TruthCanvas per image.

    Each image names its canvas in ``canvas`` (the IIIF canvas id, as ``enricher export`` writes it) or,
    failing that, by an http(s) ``file_name``; ``manifest`` is the manifest id (optional). Boxes are in the
    image's ``width`` x ``height`` pixels and are scaled to ``canvas_width`` x ``canvas_height`` when
    the image gives them, else taken as canvas coordinates. An image is exhaustive for every category
    of the file except its LVIS-style ``not_exhaustive_category_ids``. A box's annotation id is its
    ``source`` (the Web Annotation it came from), else ``{file URI}#{id}``.

    Raises InputError naming the file and the offending image or annotation.
    """
    coco = _read_json(path)
    uri = Path(path).resolve().as_uri()
    names = _categories(coco, path)
    boxes: dict[int, list[TruthBox]] = {}
    images = _images(coco, path)
    for n, ann in enumerate(_list(coco, "annotations", path)):
        try:
            image = images[ann["image_id"]]
            bbox = _canvas_box(ann["bbox"], image)
            box = TruthBox(names[ann["category_id"]], bbox, str(ann.get("source") or f"{uri}#{ann['id']}"))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise InputError(f"annotations[{n}] is not a COCO box annotation ({exc!r})", where=str(path)) from None
        boxes.setdefault(image["id"], []).append(box)
    canvases = []
    for index, image in enumerate(images.values()):
        not_exhaustive = {names.get(c) for c in image.get("not_exhaustive_category_ids", [])}
        manifest = str(image.get("manifest") or "")
        width, height = (round(v) for v in (image.get("canvas_width", image["width"]),
                                            image.get("canvas_height", image["height"])))
        canvases.append(TruthCanvas(
            manifest_key=manifest_key(manifest) if manifest else "", manifest_id=manifest,
            canvas_id=image["_canvas"], canvas_index=index, width=width, height=height,
            image_service=None, image_url=None, labels=frozenset(set(names.values()) - not_exhaustive),
            boxes=tuple(boxes.get(image["id"], ())),
        ))
    return canvases


def read_coco_results(path: str | Path, truth_path: str | Path) -> list[Prediction]:
    """Read a COCO results file (image_id, category_id, bbox, score) whose ids are those of TRUTH_PATH.

    Raises InputError naming the file and the offending entry.
    """
    results = _read_json(path)
    if not isinstance(results, list):
        raise InputError("a COCO results file is a JSON array of detections", where=str(path))
    truth = _read_json(truth_path)
    images, names = _images(truth, truth_path), _categories(truth, truth_path)
    uri = Path(path).resolve().as_uri()
    predictions = []
    for n, item in enumerate(results):
        try:
            image = images[item["image_id"]]
            box = _canvas_box(item["bbox"], image)
            predictions.append(Prediction(image["_canvas"], names[item["category_id"]], box, float(item["score"]),
                                          f"{uri}#{n}"))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise InputError(f"detection [{n}] does not fit the ground truth file ({exc!r})", where=str(path)) from None
    return predictions


def _read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read COCO JSON: {exc}", where=str(path)) from None


def _list(coco, name: str, path) -> list:
    if not isinstance(coco, dict) or not isinstance(coco.get(name), list):
        raise InputError(f"not a COCO detection file: no {name!r} array", where=str(path))
    return coco[name]


def _categories(coco, path) -> dict:
    try:
        return {c["id"]: str(c["name"]) for c in _list(coco, "categories", path)}
    except (KeyError, TypeError) as exc:
        raise InputError(f"a category lacks {exc}", where=str(path)) from None


def _images(coco, path) -> dict:
    images = {}
    for n, image in enumerate(_list(coco, "images", path)):
        name = str(image.get("file_name", "")) if isinstance(image, dict) else ""
        canvas = image.get("canvas") if isinstance(image, dict) else None
        canvas = canvas or (name if name.startswith(("http://", "https://")) else None)
        if not canvas or not all(k in image for k in ("id", "width", "height")):
            raise InputError(f"images[{n}] needs id, width, height and a canvas id (in 'canvas' or an http(s) "
                             "'file_name')", where=str(path))
        images[image["id"]] = {**image, "_canvas": canvas}
    return images


def _canvas_box(bbox, image: dict) -> Box:
    """A COCO bbox in IMAGE's pixels, in canvas units (scaled when the image gives its canvas's size)."""
    sx = image.get("canvas_width", image["width"]) / image["width"]
    sy = image.get("canvas_height", image["height"]) / image["height"]
    x, y, w, h = (float(v) for v in bbox)
    return x * sx, y * sy, w * sx, h * sy
