"""read_results against pycocotools' own COCOeval.accumulate, value for value."""

import contextlib
import io
import random

import numpy as np

from enricher.cocoap import read_results, run_cocoeval


def records(seed: int):
    """COCO records of 40 images and 5 classes: class 4 has detections but no truth, class 5 neither;
    scores rounded to force ties; a crowd box and a box too large for the area range (both ignored)."""
    rng = random.Random(seed)
    images = [{"id": n, "width": 1000, "height": 800} for n in range(1, 41)]
    categories = [{"id": k, "name": f"c{k}"} for k in range(1, 6)]
    truth, found = [], []
    for image in images:
        for _ in range(rng.randint(0, 6)):
            x, y, w, h = rng.uniform(0, 800), rng.uniform(0, 600), rng.uniform(5, 200), rng.uniform(5, 200)
            truth.append({"id": len(truth) + 1, "image_id": image["id"], "category_id": rng.randint(1, 3),
                          "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            if rng.random() < 0.8:  # a detection near it, at times of another class
                box = [x + rng.uniform(-20, 20), y + rng.uniform(-20, 20), w * rng.uniform(0.7, 1.3), h]
                found.append({"id": len(found) + 1, "image_id": image["id"], "category_id": rng.randint(1, 4),
                              "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                              "score": round(rng.random(), 1)})
    truth[3]["iscrowd"] = 1
    truth[5]["bbox"], truth[5]["area"] = [0, 0, 2e5, 1e5], 2e10
    for ignored in (truth[3], truth[5]):  # a detection on each: accumulate leaves it out
        found.append({**ignored, "id": len(found) + 1, "iscrowd": 0, "score": 0.5})
    return images, categories, truth, found


def test_read_results_gives_accumulates_precision_and_the_matches_at_iou_half():
    for seed in range(3):
        images, categories, truth, found = records(seed)
        engine = run_cocoeval(images, categories, truth, found)
        precision, match = read_results(engine, len(found))
        with contextlib.redirect_stdout(io.StringIO()):
            engine.accumulate()
        expected = engine.eval["precision"][:, :, :, 0, -1]
        assert np.array_equal(precision, expected)
        assert (precision[:, :, 3:] == -1).all() and (precision[:, :, :3] > -1).any()
        matches = {d: m for e in engine.evalImgs if e for d, m in zip(e["dtIds"], e["dtMatches"][0])}
        assert match.tolist() == [matches.get(n, 0) for n in range(1, len(found) + 1)]
        assert match.any()


def test_read_results_of_an_evaluation_without_detections():
    images, categories, truth, _ = records(0)
    precision, match = read_results(run_cocoeval(images, categories, truth, []), 0)
    assert precision.shape == (10, 101, 5) and match.shape == (0,)
    assert (precision[:, :, :3] == 0).all() and (precision[:, :, 3:] == -1).all()
