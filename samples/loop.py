"""The curation loop end to end on the demo samples, offline: enrich, review, evaluate, export, retrain,
evaluate again. docs/finetune.md explains each step and records the figures of a run.

    python samples/loop.py                       # work files in samples/build/loop/, figures in loop.json there

1. Serve samples/images and samples/manifests over IIIF on loopback (port 8182, as the manifests say) and
   enrich the sample collection with the demo weights into a fresh database, as a job does.
2. A simulated curator reviews every canvas through the service's HTTP API, as the review page would,
   against samples/images/truth.json: accept a box that matches a true object, correct a wrong class or a
   loose box, reject the rest, add the objects the model missed, then state the canvas was reviewed
   exhaustively for the seven demo classes.
3. Evaluate the demo model against what the curator confirmed (enricher.evaluate).
4. Export the reviewed canvases (enricher.export): COCO + YOLO, split by manifest.
5. Fine-tune the demo weights on the exported training split for a few epochs on CPU (ultralytics).
6. Evaluate the fine-tuned model on the same canvases, and on the held-out test split alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import httpx
from PIL import Image
from werkzeug.serving import make_server

from enricher.annotate import ANNOTATION_CONTEXT, manifest_key, region_target
from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS
from enricher.evaluate import evaluate
from enricher.export import export_store, parse_ratios
from enricher.fetch import Fetcher
from enricher.groundtruth import (
    Prediction,
    TruthBox,
    TruthCanvas,
    predictions,
    reviewed_canvases,
)
from enricher.imageapi import image_to_canvas
from enricher.imageserver import serve_images
from enricher.manifest import read_manifests
from enricher.pipeline import Enricher
from enricher.review import (
    box_of,
    build_exhaustive,
    build_verdict,
    class_iri,
    class_of,
    iou,
    text_body,
)
from enricher.store import Store, open_store
from enricher.web import create_app
from enricher.yolo import load_yolo

PORT = 8182  # the sample manifests name this port
IMAGES = HERE / "images"
COLLECTION = HERE / "manifests" / "collection.json"
CLASSES = ("dog", "horse", "bird", "clock", "book", "cup", "stop sign")  # the demo weights' classes
TOKEN = "loop-curator-secret"
CURATOR = {"type": "Person", "name": "curator"}
MATCH = 0.5  # IoU at which a machine box is the true object (else it is rejected, or corrected if loose)
LOOSE = 0.1  # IoU at which a machine box of the right class is a loose box of it, to be corrected


def enrich(config, store: Store) -> tuple[str, list]:
    """Enrich the sample collection into STORE as a job does; return the model's sha256 and the manifests."""
    enricher = Enricher(config)
    manifests = list(read_manifests(str(COLLECTION), enricher.fetcher, config))
    for manifest in manifests:
        key = manifest_key(manifest.id)
        store.save_manifest(key, manifest.id, manifest.url, manifest.label, manifest.document)
        for result in enricher.enrich(manifest).canvases:
            if result.error is not None:
                raise SystemExit(f"loop: canvas {result.canvas.id} failed: {result.error}")
            store.replace_machine_annotations(key, result.canvas.id, enricher.generator.model_sha256, result.annotations)
    return enricher.generator.model_sha256, manifests


def true_boxes(canvas) -> list[tuple[str, tuple]]:
    """The true objects of CANVAS from truth.json (image pixels), in canvas coordinates."""
    name = canvas.service_id.rstrip("/").rsplit("/", 1)[-1] + ".jpg"
    size = Image.open(IMAGES / name).size
    return [(t["label"], image_to_canvas(tuple(t["box"]), size, (canvas.width, canvas.height)))
            for t in json.loads((IMAGES / "truth.json").read_text())[name]]


class Curator:
    """Reviews canvases through the HTTP API with a bearer token, counting what it did."""

    def __init__(self, client: httpx.Client, tight: float):
        self.client = client
        self.tight = tight  # IoU with the true box below which the curator redraws a matching box
        self.done: Counter[str] = Counter()

    def post(self, path: str, document: dict) -> dict:
        response = self.client.post(path, json=document, headers={"Content-Type": "application/ld+json"})
        if response.status_code != 201:
            raise SystemExit(f"loop: POST {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def judge(self, key: str, annotation: dict, verdict: str, reasons=()) -> None:
        document = build_verdict(verdict_id="", target=annotation, verdict=verdict, creator=CURATOR,
                                 created=_now(), reasons=reasons)
        del document["id"]  # the service names what is posted to a container
        self.post(f"/{key}/verdicts/", document)
        self.done[verdict] += 1

    def tag(self, key: str, manifest, canvas, label: str, box: tuple, replaces: str | None = None) -> None:
        """Post a person's tagging annotation of LABEL at BOX (canvas coordinates)."""
        document = {
            "@context": ANNOTATION_CONTEXT, "type": "Annotation", "motivation": "tagging",
            "body": [text_body(label, "tagging", class_iri(label))],
            "target": region_target(canvas.id, manifest.id, tuple(round(v) for v in box)),
            **({"replaces": replaces} if replaces else {}),
        }
        self.post(f"/{key}/annotations/", document)
        if not replaces:
            self.done["added"] += 1

    def review(self, manifest, canvas) -> None:
        """Review one canvas against its true objects, then state it was reviewed exhaustively."""
        key = manifest_key(manifest.id)
        page = self.client.get(f"/{key}/pages/{canvas.index}.json").raise_for_status().json()
        machine = [(a, class_of(a), box_of(a)) for a in page.get("items", []) if "generator" in a]
        truth = true_boxes(canvas)
        pairs = sorted(((iou(m[2], t[1]), i, j) for i, m in enumerate(machine) for j, t in enumerate(truth)), reverse=True)
        matched_m, matched_t = {}, set()
        for overlap, i, j in pairs:
            if overlap >= MATCH and i not in matched_m and j not in matched_t:
                matched_m[i] = j
                matched_t.add(j)
        for i, (annotation, label, box) in enumerate(machine):
            if i in matched_m:
                true_label, true_box = truth[matched_m[i]]
                reasons = ([] if true_label == label else ["wrong-concept"]) + ([] if iou(box, true_box) >= self.tight else ["bad-box"])
                if reasons:
                    self.tag(key, manifest, canvas, true_label, true_box, replaces=annotation["id"])
                    self.judge(key, annotation, "corrected", reasons)
                else:
                    self.judge(key, annotation, "accepted")
                continue
            loose = [j for j, (t_label, t_box) in enumerate(truth)
                     if j not in matched_t and t_label == label and iou(box, t_box) >= LOOSE]
            if loose:
                j = max(loose, key=lambda j: iou(box, truth[j][1]))
                matched_t.add(j)
                self.tag(key, manifest, canvas, label, truth[j][1], replaces=annotation["id"])
                self.judge(key, annotation, "corrected", ["bad-box"])
            else:
                duplicate = any(iou(box, t_box) >= MATCH for _, t_box in truth)
                self.judge(key, annotation, "rejected", ["duplicate" if duplicate else "not-present"])
        for j, (label, box) in enumerate(truth):
            if j not in matched_t:
                self.tag(key, manifest, canvas, label, box)
        exhaustive = build_exhaustive(verdict_id="", canvas_id=canvas.id, manifest_id=manifest.id, classes=CLASSES,
                                      creator=CURATOR, created=_now())
        del exhaustive["id"]
        self.post(f"/{key}/verdicts/", exhaustive)
        self.done["exhaustive"] += 1


def true_canvases(truth: list[TruthCanvas], manifests) -> list[TruthCanvas]:
    """TRUTH with the boxes of truth.json instead of the curator's: what the reviewed boxes approximate."""
    canvases = {c.id: c for m in manifests for c in m.canvases}
    return [replace(c, boxes=tuple(TruthBox(label, box, f"{c.canvas_id}#true{n}")
                                   for n, (label, box) in enumerate(true_boxes(canvases[c.canvas_id]))))
            for c in truth]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def raw_predictions(config, weights: Path, manifests) -> list[Prediction]:
    """Every detection of WEIGHTS on the sample canvases (canvas coordinates), straight from the pipeline:
    kept out of the store, where re-run reconciliation would fold them into the reviewed annotations."""
    enricher = Enricher(config.replace(weights=str(weights)))
    found = []
    for manifest in manifests:
        for result in enricher.enrich(manifest).canvases:
            found += [Prediction(result.canvas.id, d.label, d.box, d.score, a["id"])
                      for d, a in zip(result.detections, result.annotations)]
    return found


def figures(evaluation) -> dict:
    """The overall figures of an evaluation and AP@0.5:0.95 per class."""
    o = evaluation.overall

    def r(v):
        return None if v is None else round(v, 4)

    return {"canvases": evaluation.canvases, "truths": o.truths, "detections": o.detections, "tp": o.tp, "fp": o.fp,
            "fn": o.fn, "precision": r(o.precision), "recall": r(o.recall), "AP50": r(o.ap50), "AP50-95": r(o.ap),
            "AP50-95 per class": {c.label: r(c.ap) for c in evaluation.classes}}


def measure(truth, exact, held_out, found, threshold: float) -> dict:
    """Figures of FOUND against the reviewed canvases, their test split alone, and truth.json's boxes."""
    test_ids = {c.canvas_id for c in held_out}
    report = {"reviewed": figures(evaluate(truth, found, threshold)),
              "true boxes": figures(evaluate(exact, found, threshold))}
    if held_out:
        report["reviewed, test split"] = figures(evaluate(held_out, found, threshold))
        report["true boxes, test split"] = figures(evaluate([c for c in exact if c.canvas_id in test_ids], found, threshold))
    return report


def retrain(data: Path, out: Path, args) -> tuple[Path, float]:
    """Fine-tune the demo weights on DATA; return the weights of the last epoch and the seconds it took."""
    model = load_yolo(DEMO_WEIGHTS)  # first: it imports ultralytics offline
    import ultralytics.data.utils

    # The dataset check fetches Arial.ttf for plot labels; with plots off no font is needed.
    ultralytics.data.utils.check_font = lambda *a, **k: None
    started = time.perf_counter()
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device="cpu", workers=0,
                optimizer="AdamW", lr0=args.lr0, warmup_epochs=0, seed=0, deterministic=True, amp=False, plots=False,
                val=False, project=str(out), name="finetune", exist_ok=True, verbose=False)
    return Path(model.trainer.last), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=HERE / "build" / "loop", help="work folder (an earlier loop's is emptied first)")
    parser.add_argument("--split", default="0.5,0,0.5", help="train,val,test fractions for the export")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr0", type=float, default=0.0005)
    parser.add_argument("--conf", type=float, default=0.1, help="publishing threshold of the enrichment")
    parser.add_argument("--tight", type=float, default=0.8, help="IoU below which the curator redraws a box")
    args = parser.parse_args()
    work = args.work.resolve()
    if work.exists():
        if any(work.iterdir()) and not (work / "loop.json").exists() and not (work / "enricher.sqlite3").exists():
            raise SystemExit(f"loop: {work} holds something other than an earlier loop: choose another --work")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    config = load_config({"weights": str(DEMO_WEIGHTS), "database": str(work / "enricher.sqlite3"), "job_worker": False,
                          "allowed_hosts": ["127.0.0.1"], "tokens": [f"curator:{TOKEN}"], "conf": args.conf}, env={})
    report: dict = {"command": "python samples/loop.py " + " ".join(sys.argv[1:]), "settings": vars(args) | {"work": str(work)}}
    clock = time.perf_counter()

    with serve_images(IMAGES, port=PORT, documents=HERE / "manifests"), open_store(config.database) as store:
        model, manifests = enrich(config, store)
        report["enriched"] = {"machine annotations": store.count(None), "seconds": round(time.perf_counter() - clock, 1)}

        server = make_server("127.0.0.1", 0, create_app(config.as_dict()), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}",
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
                curator = Curator(client, args.tight)
                for manifest in manifests:
                    for canvas in manifest.canvases:
                        curator.review(manifest, canvas)
        finally:
            server.shutdown()
            thread.join()
        report["review"] = dict(curator.done)

        truth = reviewed_canvases(store)
        canvas_ids = [c.canvas_id for c in truth]
        before = predictions(store, model, canvas_ids)
        with Fetcher(config) as fetcher:
            exported = export_store(store, work / "export", fetcher, config, ratios=parse_ratios(args.split), classes=CLASSES)
    report["ground truth"] = {"canvases": len(truth), "boxes": sum(len(c.boxes) for c in truth)}
    report["export"] = {"images": dict(exported.images), "boxes": dict(exported.boxes), "splits": exported.splits,
                        "skipped": [vars(s) for s in exported.skipped]}
    test_ids = {m for m, split in exported.splits.items() if split == "test"}
    held_out = [c for c in truth if c.manifest_id in test_ids]
    exact = true_canvases(truth, manifests)
    report["before"] = measure(truth, exact, held_out, before, config.conf)

    data = next(p for p in exported.files if p.name == "data.yaml")
    weights, seconds = retrain(data, work / "runs", args)
    report["training"] = {"weights": str(weights), "seconds": round(seconds, 1), "epochs": args.epochs, "imgsz": args.imgsz}

    with serve_images(IMAGES, port=PORT, documents=HERE / "manifests"):
        after = raw_predictions(config, weights, manifests)
    report["after"] = measure(truth, exact, held_out, after, config.conf)
    report["total seconds"] = round(time.perf_counter() - clock, 1)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    (work / "loop.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
