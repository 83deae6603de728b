"""`enricher evaluate` on the store against raw pycocotools on the same data exported to files, one run.

Seeds a fresh store through its own API (one manifest per 100 canvases; machine annotations built by
annotate.build_annotation and stored canvas by canvas; curators' verdicts: ACCEPTED of each canvas's
detections accepted, the rest left pending, one person-made box per canvas for an object the model
missed, and an exhaustiveness statement per canvas), then exports the truth (the boxes
groundtruth.reviewed_canvases returns) and every prediction to a COCO ground-truth file and a COCO
results file. Each side runs in a fresh subprocess, alternating, ROUNDS times:

  ours      `enricher evaluate --threshold 0.5` in-process (click): read reviews and predictions from
            SQLite, match and count, COCOeval, fit the calibration, store evaluation and calibration,
            print the summary (no report files: those are a fixed cost, timed once on their own)
  baseline  COCO(truth file), loadRes(results file), COCOeval with the same parameters (bbox, area
            range "all", maxDets 100), evaluate(), accumulate()

Each side's modules are imported before its clock starts (ours: the CLI, the measuring and the SQLite
store that open_store loads lazily; the baseline: pycocotools), so neither side's time includes imports.
Prints the best time (and CPU time) of each side, each side's peak RSS above the interpreter's after
imports (ru_maxrss), the ratios ours / baseline of time (target <= 1.3), CPU and peak memory (target
<= 1.5) with the load average, and checks that both report the same AP.

    nice python benchmarks/bench_evaluate.py --canvases 10000 --per-canvas 10
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABELS = ("dog", "horse", "bird", "clock", "book", "cup", "stop sign")
CANVAS_SIZE = (2000, 1500)
PER_MANIFEST = 100
ACCEPTED = 6
SHA = "be" * 32
BASE = "https://bench.example.org/"
THRESHOLD = 0.5


def detections(rng: random.Random, count: int):
    """COUNT detections in distinct grid cells; the first ACCEPTED score high (the curator accepts them),
    the rest are a mix of weak and strong false alarms."""
    from enricher.detect import Detection

    side = 4
    cell_w, cell_h = CANVAS_SIZE[0] / side, CANVAS_SIZE[1] / side
    found = []
    for n in range(count):
        x, y = (n % side) * cell_w + rng.uniform(0, 20), (n // side % side) * cell_h + rng.uniform(0, 20)
        w, h = cell_w * rng.uniform(0.3, 0.9), cell_h * rng.uniform(0.3, 0.9)
        score = rng.uniform(0.5, 0.99) if n < ACCEPTED else rng.uniform(0.25, 0.9)
        found.append(Detection(rng.choice(LABELS), score, (x, y, w, h)))
    return found


def seed(database: Path, canvases: int, per_canvas: int) -> None:
    """Fill DATABASE through the Store API (see the module docstring)."""
    from bench_container import (
        manifest_document,  # here: the measured child processes need not load it
    )

    from enricher.annotate import Generator, build_annotation, manifest_key
    from enricher.config import load_config
    from enricher.manifest import parse_manifest
    from enricher.review import build_exhaustive, build_verdict, class_iri, version_of
    from enricher.store import open_store
    from enricher.vocab import Vocabulary

    config = load_config({"database": str(database), "base_url": BASE}, env={})
    vocabulary = Vocabulary.load()
    mappings = {label: vocabulary.lookup(label) for label in LABELS}
    generator = Generator("bench", "bench-model.pt", SHA)
    rng = random.Random(0)
    curator = {"type": "Person", "name": "Curator"}
    created = "2025-01-01T00:00:00Z"
    with open_store(database) as store:
        store.db.execute("PRAGMA synchronous = OFF")  # seeding only: the measured runs open their own connection
        for number in range(0, canvases // PER_MANIFEST):
            document = manifest_document(number, PER_MANIFEST, CANVAS_SIZE)
            manifest = parse_manifest(document, document["id"])
            key = manifest_key(manifest.id)
            store.save_manifest(key, manifest.id, document["id"], document["label"]["en"][0], document)
            for canvas in manifest.canvases:
                built = [build_annotation(canvas=canvas, manifest=manifest, detection=d, mapping=mappings[d.label],
                                          generator=generator, created=created, config=config)
                         for d in detections(rng, per_canvas)]
                store.replace_machine_annotations(key, canvas.id, SHA, built)
                for n, annotation in enumerate(built[:ACCEPTED]):
                    target = store.get(annotation["id"]).document
                    verdict = build_verdict(verdict_id=f"{BASE}{key}/verdicts/{canvas.index}-{n}", target=target,
                                            verdict="accepted", creator=curator, created=created)
                    store.add_verdict(key, verdict, "curator", target=target["id"], canvas_id=None,
                                      judgement="accepted", version=version_of(target))
                label = rng.choice(LABELS)
                store.create(key, {
                    "id": f"{BASE}{key}/annotations/added-{canvas.index}", "type": "Annotation", "motivation": "tagging",
                    "body": [{"type": "TextualBody", "value": label, "purpose": "tagging", "subject": class_iri(label)}],
                    "target": {"type": "SpecificResource", "source": {"id": canvas.id, "type": "Canvas"},
                               "selector": {"type": "FragmentSelector", "value": "xywh=1800,1300,150,150"}},
                }, "curator")
                statement = build_exhaustive(verdict_id=f"{BASE}{key}/verdicts/x{canvas.index}", canvas_id=canvas.id,
                                             manifest_id=manifest.id, classes=LABELS, creator=curator, created=created)
                store.add_verdict(key, statement, "curator", target=None, canvas_id=canvas.id,
                                  judgement="exhaustive", version=None)


def export(database: Path, truth_file: Path, results_file: Path) -> tuple[int, int, int]:
    """Write the store's truth and predictions as COCO files; return (canvases, truth boxes, detections)."""
    from enricher import groundtruth
    from enricher.store import open_store

    with open_store(database) as store:
        truth = groundtruth.reviewed_canvases(store)
        predictions = groundtruth.predictions(store, SHA, {c.canvas_id for c in truth})
    image = {c.canvas_id: n for n, c in enumerate(truth, 1)}
    category = {label: n for n, label in enumerate(sorted(LABELS), 1)}
    boxes = [(image[c.canvas_id], b) for c in truth for b in c.boxes]
    coco = {
        "images": [{"id": image[c.canvas_id], "width": c.width, "height": c.height, "file_name": c.canvas_id}
                   for c in truth],
        "categories": [{"id": n, "name": label} for label, n in category.items()],
        "annotations": [{"id": n, "image_id": i, "category_id": category[b.label], "bbox": list(b.box),
                         "area": b.box[2] * b.box[3], "iscrowd": 0} for n, (i, b) in enumerate(boxes, 1)],
    }
    truth_file.write_text(json.dumps(coco))
    results_file.write_text(json.dumps([{"image_id": image[p.canvas_id], "category_id": category[p.label],
                                         "bbox": list(p.box), "score": p.score} for p in predictions]))
    return len(truth), len(boxes), len(predictions)


def run_ours(database: Path) -> dict:
    """Run `enricher evaluate` in this process; return seconds and the overall AP."""
    from enricher.cli import main
    from enricher.store import open_store

    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        main(["evaluate", "--database", str(database), "--base-url", BASE, "--model", SHA,
              "--threshold", str(THRESHOLD)], standalone_mode=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # the summary's last line is the evaluation's URL: read that one record, not every earlier run's too
    # (each holds 100,000 pairs, and reading them all would count in this side's peak memory)
    with open_store(database) as store:
        record = store.evaluation(printed.getvalue().strip().rsplit("/", 1)[-1]).document
    overall = record["evaluation"]["overall"]
    return {"seconds": seconds, "cpu": cpu, "ap": overall["ap"], "ap50": overall["ap50"], "summary": printed.getvalue()}


def run_baseline(truth_file: Path, results_file: Path) -> dict:
    """Run pycocotools on the files; return seconds and the overall AP."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # enricher's evaluation pauses the cycle collector (COCOeval keeps a million objects alive, and
    # walking them is a fifth of the run); the baseline gets the same, so the ratio compares the work
    gc.disable()
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(truth_file))
        engine = COCOeval(truth, truth.loadRes(str(results_file)), "bbox")
        engine.params.areaRng, engine.params.areaRngLbl, engine.params.maxDets = [[0.0, 1e10]], ["all"], [100]
        engine.evaluate()
        engine.accumulate()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.enable()
    precision = engine.eval["precision"][:, :, :, 0, -1]
    return {"seconds": seconds, "cpu": cpu, "ap": float(precision[precision > -1].mean()),
            "ap50": float(precision[0][precision[0] > -1].mean())}


def report_files(database: Path, out: Path) -> float:
    """Seconds to write the report files of the latest evaluation."""
    from enricher.report import write_files
    from enricher.store import open_store

    with open_store(database) as store:
        record = store.evaluations(SHA)[0].document
    started = time.perf_counter()
    write_files(record, out)
    return time.perf_counter() - started


def child(args: argparse.Namespace) -> None:
    """One measured side, in a fresh interpreter: imports first, then the work; prints JSON."""
    import numpy  # noqa: F401
    import pycocotools.cocoeval  # noqa: F401

    import enricher.cli  # noqa: F401
    import enricher.measure  # noqa: F401
    import enricher.store.sqlite  # noqa: F401

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = Path(args.folder)
    if args.side == "ours":
        result = run_ours(folder / "bench.sqlite3")
    elif args.side == "baseline":
        result = run_baseline(folder / "truth.json", folder / "results.json")
    else:
        result = {"seconds": report_files(folder / "bench.sqlite3", folder / "report")}
    result["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps(result))


def measure(side: str, folder: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--side", side, "--folder", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=10_000)
    parser.add_argument("--per-canvas", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--folder", help="reuse a seeded folder (bench.sqlite3, truth.json, results.json)")
    parser.add_argument("--side", choices=("ours", "baseline", "report"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-evaluate-"))
    database = folder / "bench.sqlite3"
    if not database.exists():
        started = time.perf_counter()
        seed(database, args.canvases, args.per_canvas)
        print(f"seeded {database} in {time.perf_counter() - started:.0f} s")
    canvases, truths, predictions = export(database, folder / "truth.json", folder / "results.json")
    print(f"{canvases} reviewed canvases, {truths} truth boxes, {predictions} detections")
    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for _ in range(args.rounds):
        for side in runs:
            runs[side].append(measure(side, folder))
    best = {side: min(results, key=lambda r: r["seconds"]) for side, results in runs.items()}
    cpu = {side: min(r["cpu"] for r in results) for side, results in runs.items()}
    peak = {side: max(r["peak_mb"] for r in results) for side, results in runs.items()}
    for side, results in runs.items():
        times = ", ".join(f"{r['seconds']:.2f}" for r in results)
        print(f"{side:>9}: best {best[side]['seconds']:.2f} s (runs: {times}), CPU {cpu[side]:.2f} s; peak RSS above "
              f"imports {peak[side]:.0f} MB; AP {best[side]['ap']:.4f}, AP50 {best[side]['ap50']:.4f}")
    print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    ratio = best["ours"]["seconds"] / best["baseline"]["seconds"]
    print(f"ratio ours / baseline: time {ratio:.2f} (target <= 1.3), CPU {cpu['ours'] / cpu['baseline']:.2f}, "
          f"peak memory {peak['ours'] / peak['baseline']:.2f} (target <= 1.5)")
    print(f"report files (HTML, plots, JSON-LD, Turtle): {measure('report', folder)['seconds']:.2f} s")
    if abs(best["ours"]["ap"] - best["baseline"]["ap"]) > 1e-9:
        raise SystemExit("the two sides disagree on AP")
    print(best["ours"]["summary"])


if __name__ == "__main__":
    main()
