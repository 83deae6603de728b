"""Train the demo YOLO on synthetic pages from samples/synth.py, on CPU, and measure it on held-out pages.

    python samples/train_demo.py            # dataset in samples/build/, weights + metrics in samples/demo/

The model starts from the yolov8n architecture with random weights: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # run from a checkout without installing

import synth  # noqa: E402  (the generator sits next to this script)

from enricher.yolo import load_yolo, offline_ultralytics  # noqa: E402

SPLITS = ("train", "val", "test")
# Seed offsets keep the splits disjoint: no page of the held-out test split is ever trained on.
SPLIT_OFFSET = {"train": 0, "val": 1_000_000, "test": 2_000_000}


def _write_page(job: tuple[Path, str, int, int, int, int, int]) -> int:
    """Draw one page and write it with its YOLO label file; return the number of objects."""
    root, split, seed, size, count, lo, hi = job
    image, objects = synth.make_image(seed, (size, size), count, lo, hi)
    name = f"{split}-{seed}"
    image.save(root / "images" / split / f"{name}.jpg", quality=92)
    lines = [f"{synth.CLASSES.index(label)} {(x + w / 2) / size:.6f} {(y + h / 2) / size:.6f} "
             f"{w / size:.6f} {h / size:.6f}" for label, x, y, w, h in objects]
    (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return len(objects)


def write_dataset(root: Path, counts: dict[str, int], size: int, seed: int, objects: tuple[int, int],
                  sizes: tuple[int, int]) -> Path:
    """Write the train/val/test pages and data.yaml under ``root``; return the data.yaml path."""
    import numpy as np

    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(seed)
    jobs = []
    for split in SPLITS:
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(counts[split]):
            count = int(rng.integers(objects[0], objects[1] + 1))
            jobs.append((root, split, seed * 10_000_000 + SPLIT_OFFSET[split] + i, size, count, *sizes))
    with Pool(os.cpu_count()) as pool:
        total = sum(pool.map(_write_page, jobs, chunksize=16))
    data = root / "data.yaml"
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(synth.CLASSES))
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n{names}\n")
    print(f"dataset: {sum(counts.values())} pages, {total} objects in {root}")
    return data


def _iou(a: tuple, b: tuple) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def _boxes(model, images: list, offsets: list[tuple[int, int]]) -> list[tuple[str, tuple]]:
    """Predict at 640 px; return (class, box) in the coordinates of the page the images were cut from."""
    boxes = []
    for result, (dx, dy) in zip(model.predict(images, imgsz=640, device="cpu", verbose=False), offsets):
        boxes += [(result.names[int(c)], (x0 + dx, y0 + dy, x1 - x0, y1 - y0))
                  for (x0, y0, x1, y1), c in zip(result.boxes.xyxy.tolist(), result.boxes.cls.tolist())]
    return boxes


def _score(boxes: list[tuple[str, tuple]], truth: list[dict]) -> dict[str, int]:
    """Count true objects matched by a box of the same class with IoU >= 0.5."""
    hits = sum(any(label == t["label"] and _iou(box, t["box"]) >= 0.5 for label, box in boxes) for t in truth)
    return {"found": hits, "true": len(truth), "predicted": len(boxes)}


def check_samples(weights: Path, images: Path, tile: int = 640, overlap: int = 80) -> dict[str, dict[str, int]]:
    """Run the model on the sample canvases as the enricher would: whole scenes at 640 px; large.jpg
    downscaled whole (its small objects are lost), as the one full-resolution tile holding the most
    objects, and cut into overlapping full-resolution tiles (each object lies whole in some tile)."""
    from PIL import Image

    model = load_yolo(weights)
    truth = json.loads((images / "truth.json").read_text())
    report = {name: _score(_boxes(model, [Image.open(images / name)], [(0, 0)]), objects)
              for name, objects in truth.items() if name != "large.jpg"}
    large, objects = Image.open(images / "large.jpg"), truth["large.jpg"]
    report["large.jpg downscaled to 640"] = _score(_boxes(model, [large], [(0, 0)]), objects)

    def inside(t: dict, x: int, y: int) -> bool:
        bx, by, bw, bh = t["box"]
        return x <= bx and y <= by and bx + bw <= x + tile and by + bh <= y + tile

    corners = [(max(0, t["box"][0] - dx), max(0, t["box"][1] - dy))
               for t in objects for dx in (0, tile // 2, tile - 80) for dy in (0, tile // 2, tile - 80)]
    x, y = max(corners, key=lambda c: sum(inside(t, *c) for t in objects))
    report[f"large.jpg tile {x},{y} at full resolution"] = _score(
        _boxes(model, [large.crop((x, y, x + tile, y + tile))], [(x, y)]), [t for t in objects if inside(t, x, y)])

    def starts(length: int) -> list[int]:
        return sorted({*range(0, length - tile, tile - overlap), length - tile})

    grid = [(x, y) for y in starts(large.height) for x in starts(large.width)]
    boxes = []
    for i in range(0, len(grid), 16):
        chunk = grid[i:i + 16]
        boxes += _boxes(model, [large.crop((x, y, x + tile, y + tile)) for x, y in chunk], chunk)
    report[f"large.jpg in {len(grid)} full-resolution tiles"] = _score(boxes, objects)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320, help="training pages")
    parser.add_argument("--val-images", type=int, default=60, help="validation pages (best epoch choice)")
    parser.add_argument("--test-images", type=int, default=200, help="held-out pages for the reported mAP")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--imgsz", type=int, default=192, help="page size and training size, px")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--optimizer", default="AdamW", help="ultralytics optimizer name")
    parser.add_argument("--lr0", type=float, default=0.002, help="initial learning rate (ignored by auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build", type=Path, default=HERE / "build")
    parser.add_argument("--out", type=Path, default=HERE / "demo")
    parser.add_argument("--check", type=Path, metavar="WEIGHTS", help="only run the sample check with these weights")
    args = parser.parse_args()
    if args.check:
        print(json.dumps(check_samples(args.check, HERE / "images"), indent=1))
        return

    args.build, args.out = args.build.resolve(), args.out.resolve()  # ultralytics files relative ones elsewhere
    started = time.time()
    counts = {"train": args.images, "val": args.val_images, "test": args.test_images}
    data = write_dataset(args.build / "dataset", counts, args.imgsz, args.seed, (2, 6), (24, 160))
    generated = time.time()

    offline_ultralytics()  # before ultralytics' first import
    import ultralytics
    import ultralytics.data.utils
    from ultralytics import YOLO

    # The dataset check fetches Arial.ttf for plot labels; with plots off no font is needed.
    ultralytics.data.utils.check_font = lambda *a, **k: None

    model = YOLO("yolov8n.yaml")  # architecture only, random weights
    # On CPU ultralytics uses one thread and no loader workers, whatever is asked.
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device="cpu",
                optimizer=args.optimizer, lr0=args.lr0, seed=args.seed, deterministic=True, amp=False,
                plots=False, pretrained=False, project=str(args.build / "runs"), name="demo", exist_ok=True)
    trained = time.time()
    best = Path(model.trainer.best)

    held_out = load_yolo(best).val(data=str(data), split="test", imgsz=args.imgsz, batch=args.batch,
                                   device="cpu", plots=False, project=str(args.build / "runs"), name="test",
                                   exist_ok=True)
    box = held_out.box
    per_class = {synth.CLASSES[c]: {"mAP50": round(float(box.ap50[i]), 4), "mAP50-95": round(float(box.ap[i]), 4)}
                 for i, c in enumerate(box.ap_class_index)}
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, args.out / "demo-yolo.pt")
    metrics = {
        "split": "test (held-out synthetic pages, seeds disjoint from training)",
        "mAP50": round(float(box.map50), 4),
        "mAP50-95": round(float(box.map), 4),
        "precision": round(float(box.mp), 4),
        "recall": round(float(box.mr), 4),
        "per_class": per_class,
        "classes": list(synth.CLASSES),
        "epochs": args.epochs,
        "images": counts,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "optimizer": args.optimizer,
        "lr0": args.lr0,
        "seed": args.seed,
        "model": "yolov8n.yaml (from scratch)",
        "train_seconds": round(trained - generated),
        "total_seconds": round(time.time() - started),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "ultralytics": ultralytics.__version__,
        "command": "python samples/train_demo.py " + " ".join(sys.argv[1:]),
        "sample_check": check_samples(best, HERE / "images"),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
