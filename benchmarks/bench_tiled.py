"""Tiled detection on large generated scans, three ways side by side in one run: one downscaled pass,
the old tiling, and the sliced tiling (full-resolution tiles plus a whole-image pass, merged per object).

Scans come from ``samples/synth.py`` (``make_scan``, fixed seeds): objects from 20 px to larger than a
tile, about 60% of them centred on a border of either tiling. For each way the script prints precision,
recall and AP@0.5 (pycocotools through ``enricher.evaluate``, at the publishing threshold) in three size
buckets by the true object's long side (a prediction goes to the bucket of the true object it overlaps
best with IoU >= 0.3, else to that of its own size); published boxes per found object (boxes lying
mostly on a found object: the object's own box plus fragments and duplicates); requests and inferences
per canvas. Time: the sliced tiling through the whole pipeline (fetch, decode, infer, merge, annotate)
against bare ``model.predict`` on the same tile and whole-image pixels, decoded up front, scan by scan
in turn (the best of ``--repeat`` runs of each). As in bench_pipeline.py, the images are pre-rendered
once by the reference server and served as files.

The old tiling is reproduced here as it was before the sliced tiling: tiles overlapping by a fifth
(128 px of 640), no whole-image pass, merged per class when IoU >= ``iou`` or one box lies 70% inside
the other, into the union of the boxes.

    python benchmarks/bench_tiled.py --scans 3 [--size 6400x4800]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bench_pipeline import prerendered, sample_manifest

from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.detect import Detection, Detector
from enricher.evaluate import evaluate
from enricher.fetch import Fetcher
from enricher.geometry import Box, iou
from enricher.groundtruth import Prediction, TruthBox, TruthCanvas
from enricher.imageapi import (
    ImageInfo,
    ImageRequest,
    load_request,
    plan_tiles,
    plan_whole,
    read_info,
    tile_starts,
    to_image_box,
)
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher

sys.path.insert(0, str(PROJECT_ROOT / "samples"))
from synth import CLASSES, make_scan  # noqa: E402

BUCKETS = (("small", 0, 100), ("medium", 100, 640), ("large", 640, math.inf))  # long side, px; large: over a tile
EVERY = ("all", 0, math.inf)
OLD_OVERLAP = 0.2  # the old tiling's overlap, a fraction of the tile
OLD_CONTAINED = 0.7
Truth = dict[str, list[tuple[str, int, int, int, int]]]


def old_merge(tiles: Sequence[Sequence[Detection]], iou: float) -> list[Detection]:
    """The old tiling's merge: one class, IoU or containment across tiles, union of the boxes."""
    flat = sorted(((det, tile) for tile, found in enumerate(tiles) for det in found), key=lambda item: -item[0].score)
    alive = [True] * len(flat)
    merged = []
    for i, (det, tile) in enumerate(flat):
        if not alive[i]:
            continue
        group = [det]
        for j, (other, other_tile) in enumerate(flat[i + 1 :], i + 1):
            if alive[j] and other.label == det.label and other_tile != tile:
                inter = intersection(det.box, other.box)
                union = det.box[2] * det.box[3] + other.box[2] * other.box[3] - inter
                smaller = min(det.box[2] * det.box[3], other.box[2] * other.box[3])
                if inter / union >= iou or inter / smaller >= OLD_CONTAINED:
                    alive[j] = False
                    group.append(other)
        x0, y0 = min(d.box[0] for d in group), min(d.box[1] for d in group)
        x1, y1 = max(d.box[0] + d.box[2] for d in group), max(d.box[1] + d.box[3] for d in group)
        merged.append(Detection(det.label, det.score, (x0, y0, x1 - x0, y1 - y0)))
    return merged


def intersection(a: Box, b: Box) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def borders(length: int, tile: int, overlaps: Sequence[int]) -> list[int]:
    """The interior tile borders along a span of LENGTH, for tilings with each of OVERLAPS."""
    edges = set()
    for overlap in overlaps:
        starts = tile_starts(0, length, tile, overlap)
        edges |= set(starts[1:]) | {s + tile for s in starts[:-1]}
    return sorted(edges)


def in_bucket(name: str, long_side: float) -> bool:
    return name == EVERY[0] or next(bucket for bucket, low, high in BUCKETS if low <= long_side < high) == name


def per_bucket(truth: Truth, found: dict[str, list[Detection]], conf: float) -> dict[str, tuple]:
    """Precision, recall, AP@0.5 and the number of true objects in each size bucket and in all."""
    results = {}
    for name, _, _ in (*BUCKETS, EVERY):
        canvases, predictions = [], []
        for scan, objects in truth.items():
            boxes = tuple(TruthBox(label, (x, y, w, h), f"{scan}#{k}") for k, (label, x, y, w, h) in enumerate(objects)
                          if in_bucket(name, max(w, h)))
            canvases.append(TruthCanvas("bench", "bench", scan, 0, 1, 1, None, None, frozenset(CLASSES), boxes))
            for k, det in enumerate(found[scan]):
                overlaps = [(iou(det.box, o[1:]), max(o[3], o[4])) for o in objects]
                best, side = max(overlaps, default=(0.0, 0))
                if in_bucket(name, side if best >= 0.3 else max(det.box[2:])):
                    predictions.append(Prediction(scan, det.label, det.box, det.score, f"{scan}@{k}"))
        overall = evaluate(canvases, predictions, conf).overall
        results[name] = (overall.precision, overall.recall, overall.ap50, overall.truths)
    return results


def boxes_per_found(truth: Truth, found: dict[str, list[Detection]]) -> float:
    """Mean number of boxes lying mostly (>= half of the box) on a true object, over the objects found."""
    counts = []
    for scan, objects in truth.items():
        for label, *box in objects:
            if any(d.label == label and iou(d.box, box) >= 0.5 for d in found[scan]):
                counts.append(sum(intersection(d.box, box) >= 0.5 * d.box[2] * d.box[3] for d in found[scan]))
    return float(np.mean(counts)) if counts else math.nan


def predict(detector: Detector, requests: list[ImageRequest], images: list) -> tuple[list[list[Detection]], float]:
    """Bare inference on decoded IMAGES; the detections in image pixels and the seconds it took."""
    start = time.perf_counter()
    found = detector.predict(images)
    seconds = time.perf_counter() - start
    mapped = [[Detection(d.label, d.score, to_image_box(d.box, r, im.size)) for d in f] for r, im, f in zip(requests, images, found)]
    return mapped, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=3)
    parser.add_argument("--size", default="6400x4800", help="Scan size WxH in pixels")
    parser.add_argument("--objects", type=int, default=48, help="Objects drawn per scan (some find no room)")
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS))
    parser.add_argument("--repeat", type=int, default=1, help="Timed runs of the pipeline and its baseline per scan; the best is kept")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    size = tuple(int(v) for v in args.size.split("x"))
    config = load_config({"weights": args.weights, "allow_private": True, "tiled": "on"})
    tile, overlap = config.tile_size, config.tile_overlap
    old_overlap = round(OLD_OVERLAP * tile)  # the old planner's steps of tile * (1 - 0.2), to a pixel
    detector = Detector(config)

    def sliced(info: ImageInfo) -> list[ImageRequest]:
        return [plan_whole(info, config.imgsz), *plan_tiles(info, (0, 0, info.width, info.height), tile, overlap)]

    def old(info: ImageInfo) -> list[ImageRequest]:
        return plan_tiles(info, (0, 0, info.width, info.height), tile, old_overlap)

    with tempfile.TemporaryDirectory() as folder:
        scans, truth = Path(folder) / "scans", {}
        scans.mkdir()
        lines = (borders(size[0], tile, [overlap, old_overlap]), borders(size[1], tile, [overlap, old_overlap]))
        for n in range(args.scans):
            image, objects = make_scan(900 + n, size, args.objects, lines=lines)
            image.save(scans / f"scan-{n}.jpg", quality=90)
            truth[f"scan-{n}"] = objects
        plan = lambda info: [*sliced(info), *old(info)]  # noqa: E731
        with prerendered(config, list(truth), Path(folder) / "tree", scans, plan) as base, Fetcher(config) as fetcher:
            manifest = parse_manifest(sample_manifest(base, args.scans, scans, "scan-*.jpg"), "bench")
            enricher = Enricher(config, detector=detector, fetcher=fetcher)
            found = {"downscaled": {}, "old tiling": {}, "sliced": {}}
            cost = {way: [0, 0] for way in found}  # requests, inferences
            pipeline_s = bare_s = old_s = whole_s = 0.0
            for canvas, scan in zip(manifest.canvases, truth):
                info = read_info(canvas.service_id, fetcher)
                requests, old_requests = sliced(info), old(info)
                images = [load_request(r, fetcher) for r in requests]
                if not bare_s:
                    detector.predict(images[: config.batch])  # warm-up: the first call builds the predictor
                pipeline, bare = [], []
                for _ in range(args.repeat):  # the pipeline and its baseline in turn, the best of each kept
                    start = time.perf_counter()
                    result = enricher.enrich(manifest, canvases=[canvas.id])
                    pipeline.append(time.perf_counter() - start)
                    bare.append(predict(detector, requests, images)[1])
                pipeline_s, bare_s = pipeline_s + min(pipeline), bare_s + min(bare)
                found["sliced"][scan] = result.canvases[0].detections
                whole, seconds = predict(detector, requests[:1], images[:1])
                whole_s += seconds
                found["downscaled"][scan] = whole[0]
                del images
                old_tiles, seconds = predict(detector, old_requests, [load_request(r, fetcher) for r in old_requests])
                old_s += seconds
                found["old tiling"][scan] = old_merge(old_tiles, config.iou)
                for way, planned in (("downscaled", requests[:1]), ("old tiling", old_requests), ("sliced", requests)):
                    cost[way][0] += sum(len(r.parts) for r in planned)
                    cost[way][1] += len(planned)

    n = args.scans
    print(f"scans: {n} of {size[0]}x{size[1]} px, {sum(map(len, truth.values()))} true objects, tile {tile} px, "
          f"overlap {overlap} px (old: {old_overlap} px), inference size {config.imgsz}, device {detector.device}")
    measured = {way: per_bucket(truth, found[way], config.conf) for way in found}
    print(f"{'bucket (long side)':<24}{'true':>6}" + "".join(f"{way + ': P / R / AP50':>30}" for way in found))
    for name, low, high in (*BUCKETS, EVERY):
        bounds = f"{name} [{low}, {'inf' if high == math.inf else high})"
        row = "".join(f"{fmt(measured[way][name][0])} / {fmt(measured[way][name][1])} / {fmt(measured[way][name][2]):>5}".rjust(30)
                      for way in found)
        print(f"{bounds:<24}{measured['sliced'][name][3]:>6}{row}")
    for way in found:
        print(f"{way:<12} boxes per found object {boxes_per_found(truth, found[way]):.3f}, "
              f"boxes per true object {sum(map(len, found[way].values())) / sum(map(len, truth.values())):.3f}, "
              f"requests per canvas {cost[way][0] / n:.0f}, inferences per canvas {cost[way][1] / n:.0f}")
    print(f"time per canvas: sliced pipeline {pipeline_s / n:.2f} s, bare inference on its {cost['sliced'][1] // n} images "
          f"{bare_s / n:.2f} s: ratio {pipeline_s / bare_s:.2f} <= 1.1: {verdict(pipeline_s / bare_s <= 1.1)}; "
          f"for scale: old tiling bare {old_s / n:.2f} s, downscaled bare {whole_s / n:.2f} s")
    check(measured, {way: boxes_per_found(truth, found[way]) for way in found})


def fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def check(measured: dict, per_found: dict) -> None:
    """Print whether the sliced tiling meets its targets against the other two ways."""
    for name, _, _ in BUCKETS:
        precision, recall = measured["sliced"][name][:2]
        others = max(measured[way][name][1] or 0.0 for way in ("downscaled", "old tiling"))
        floor = measured["downscaled"][name][0]
        print(f"{name}: recall {fmt(recall)} >= best other {others:.3f}: {verdict((recall or 0.0) >= others)}; "
              f"precision {fmt(precision)} >= downscaled - 0.05 = {fmt(floor and floor - 0.05)}: "
              f"{verdict(floor is None or (precision or 0.0) >= floor - 0.05)}")
    print(f"boxes per found object {per_found['sliced']:.3f} <= 1.05: {verdict(per_found['sliced'] <= 1.05)}")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
