"""Evaluation: hand-built cases with known counts and AP, the COCO import, DQV output, the HTML report."""

import contextlib
import io
import json

import numpy as np
import pytest
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import RDF, XSD

from enricher import calibrate, quality, report
from enricher.datafiles import METRICS_VOCABULARY
from enricher.errors import InputError
from enricher.evaluate import ALL, evaluate, read_coco, read_coco_results
from enricher.groundtruth import Prediction, TruthBox, TruthCanvas

DQV = Namespace("http://www.w3.org/ns/dqv#")
ENR = Namespace("https://w3id.org/enricher/ns#")
QB = Namespace("http://purl.org/linked-data/cube#")
DCTERMS = Namespace("http://purl.org/dc/terms/")


def canvas(cid: str, labels, *boxes, size=(200, 100)) -> TruthCanvas:
    return TruthCanvas("k1", "https://example.org/m1", cid, 0, *size, None, None, frozenset(labels),
                       tuple(TruthBox(label, box, f"{cid}/truth/{n}") for n, (label, box) in enumerate(boxes)))


def pred(cid, label, box, score, name) -> Prediction:
    return Prediction(cid, label, box, score, f"https://example.org/anno/{name}")


# Two canvases. c1 reviewed for dog and cat, c2 for dog only (its cat prediction and horse truth
# are out of scope). Expected at threshold 0.5, worked out by hand:
#   dog: d1 hits t0 (IoU 1), d2 overlaps t0 too but t0 is taken -> FP, d3 hits c2's dog, d4 (0.3)
#        is below the threshold although it would hit t1 -> t1 missed.   TP 2, FP 1, FN 1
#   cat: c1 cat missed (its only prediction is off by IoU 25/175 < 0.5 -> FP).   TP 0, FP 1, FN 1
TRUTH = [
    canvas("c1", {"dog", "cat"}, ("dog", (0, 0, 10, 10)), ("dog", (50, 50, 20, 20)), ("cat", (100, 10, 10, 10))),
    canvas("c2", {"dog"}, ("dog", (10, 10, 40, 40)), ("horse", (60, 10, 30, 30))),
]
PREDICTIONS = [
    pred("c1", "dog", (0, 0, 10, 10), 0.95, "d1"),
    pred("c1", "dog", (1, 0, 10, 10), 0.90, "d2"),
    pred("c2", "dog", (12, 10, 40, 40), 0.80, "d3"),
    pred("c1", "dog", (51, 50, 20, 20), 0.30, "d4"),
    pred("c1", "cat", (105, 15, 10, 10), 0.60, "k1"),
    pred("c2", "cat", (0, 0, 5, 5), 0.99, "out-of-scope"),
    pred("c3", "dog", (0, 0, 5, 5), 0.99, "no-truth-canvas"),
]


def by_label(evaluation):
    return {m.label: m for m in (*evaluation.classes, evaluation.overall)}


def test_counts_of_a_hand_case():
    result = by_label(evaluate(TRUTH, PREDICTIONS, 0.5))
    counts = {label: (m.truths, m.detections, m.tp, m.fp, m.fn) for label, m in result.items()}
    assert counts == {"cat": (1, 1, 0, 1, 1), "dog": (3, 3, 2, 1, 1), ALL: (4, 4, 2, 2, 2)}
    assert result["dog"].precision == pytest.approx(2 / 3) and result["dog"].recall == pytest.approx(2 / 3)
    assert result["cat"].precision == 0.0 and result["cat"].recall == 0.0
    assert result[ALL].precision == 0.5 and result[ALL].recall == 0.5
    assert [e.annotation_id for e in result["dog"].false_positives] == ["https://example.org/anno/d2"]
    assert [e.annotation_id for e in result["dog"].misses] == ["c1/truth/1"]
    assert [e.annotation_id for e in result[ALL].false_positives] == [
        "https://example.org/anno/d2", "https://example.org/anno/k1"]  # most confident first
    assert "horse" not in result  # not reviewed for horses: no class, no truth


def test_a_lower_threshold_counts_the_weak_hit():
    dog = by_label(evaluate(TRUTH, PREDICTIONS, 0.25))["dog"]
    assert (dog.tp, dog.fp, dog.fn) == (3, 1, 0)


def test_pairs_feed_the_calibration():
    evaluation = evaluate(TRUTH, PREDICTIONS, 0.5)
    assert sorted(evaluation.pairs) == [("cat", 0.6, False), ("dog", 0.8, True), ("dog", 0.9, False), ("dog", 0.95, True)]
    assert by_label(evaluation)["dog"].ece == pytest.approx(calibrate.ece([0.95, 0.9, 0.8], [1, 0, 1]))


def interpolated_ap(hits: list[bool], truths: int) -> float:
    """COCO's 101-point AP, computed here from a ranked hit list without pycocotools."""
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / truths
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = [envelope[np.searchsorted(recall, r, side="left")] if r <= recall[-1] else 0.0
              for r in np.linspace(0, 1, 101)]
    return float(np.mean(points))


def test_ap_of_a_hand_case():
    # ranked dog detections at all scores: d1 hit, d2 miss, d3 hit, d4 hit (IoU 19*20/(2*400-380)=0.905)
    result = by_label(evaluate(TRUTH, PREDICTIONS, 0.5))
    assert result["dog"].ap50 == pytest.approx(interpolated_ap([True, False, True, True], 3))
    assert result["cat"].ap50 == 0.0
    assert result[ALL].ap50 == pytest.approx((result["dog"].ap50 + result["cat"].ap50) / 2)
    assert len(result["dog"].curve) == 101 and result["dog"].curve[0] == 1.0


def test_ap_matches_pycocotools_on_the_same_files(tmp_path):
    truth_file, results_file = write_coco(tmp_path)
    ours = evaluate(read_coco(truth_file), read_coco_results(results_file, truth_file), 0.5)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(truth_file))
        engine = COCOeval(gt, gt.loadRes(str(results_file)), "bbox")
        engine.evaluate()
        engine.accumulate()
        engine.summarize()
    assert ours.overall.ap == pytest.approx(engine.stats[0], abs=1e-9)
    assert ours.overall.ap50 == pytest.approx(engine.stats[1], abs=1e-9)


def write_coco(folder):
    """The hand case as a COCO truth file (both canvases exhaustive for dog and cat) and results file."""
    images = [{"id": 7, "file_name": "a.jpg", "width": 400, "height": 200, "canvas": "c1", "canvas_width": 200,
               "canvas_height": 100, "manifest": "https://example.org/m1"},
              {"id": 9, "file_name": "https://example.org/c2", "width": 200, "height": 100}]
    truth = {"images": images, "categories": [{"id": 1, "name": "dog"}, {"id": 3, "name": "cat"}], "annotations": [
        {"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0,
         "source": "https://example.org/anno/t1"},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [100, 100, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [200, 20, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 4, "image_id": 9, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}]}
    results = [
        {"image_id": 7, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.95},
        {"image_id": 7, "category_id": 1, "bbox": [2, 0, 20, 20], "score": 0.9},
        {"image_id": 9, "category_id": 1, "bbox": [12, 10, 40, 40], "score": 0.8},
        {"image_id": 7, "category_id": 1, "bbox": [102, 100, 40, 40], "score": 0.3},
        {"image_id": 7, "category_id": 3, "bbox": [210, 30, 20, 20], "score": 0.6},
        {"image_id": 9, "category_id": 3, "bbox": [0, 0, 20, 20], "score": 0.5},
    ]
    (folder / "truth.json").write_text(json.dumps(truth))
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "truth.json", folder / "results.json"


def test_coco_import_maps_images_to_canvases_and_scales_boxes(tmp_path):
    truth_file, results_file = write_coco(tmp_path)
    canvases = {c.canvas_id: c for c in read_coco(truth_file)}
    assert set(canvases) == {"c1", "https://example.org/c2"}
    c1 = canvases["c1"]
    assert (c1.width, c1.height, c1.labels, c1.manifest_id) == (200, 100, {"dog", "cat"}, "https://example.org/m1")
    assert c1.boxes[0].box == (0, 0, 10, 10) and c1.boxes[0].annotation_id == "https://example.org/anno/t1"
    assert c1.boxes[1].annotation_id == truth_file.resolve().as_uri() + "#2"
    predictions = read_coco_results(results_file, truth_file)
    assert predictions[1].box == (1, 0, 10, 10) and predictions[1].canvas_id == "c1"
    counts = by_label(evaluate(list(canvases.values()), predictions, 0.5))
    assert (counts["dog"].tp, counts["dog"].fp, counts["dog"].fn) == (2, 1, 1)
    assert (counts["cat"].tp, counts["cat"].fp, counts["cat"].fn) == (0, 2, 1)  # c2 is exhaustive for cats here


def test_lvis_not_exhaustive_categories_leave_the_canvas(tmp_path):
    truth_file, results_file = write_coco(tmp_path)
    data = json.loads(truth_file.read_text())
    data["images"][1]["not_exhaustive_category_ids"] = [3]
    truth_file.write_text(json.dumps(data))
    cat = by_label(evaluate(read_coco(truth_file), read_coco_results(results_file, truth_file), 0.5))["cat"]
    assert cat.fp == 1


@pytest.mark.parametrize("document, message", [
    ({"images": []}, "no 'categories' array"),
    ({"categories": [], "annotations": [], "images": [{"id": 1, "width": 5, "height": 5, "file_name": "a.jpg"}]},
     "images[0] needs"),
    ({"categories": [], "images": [{"id": 1, "width": 5, "height": 5, "canvas": "c"}],
      "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}, "annotations[0]"),
])
def test_bad_coco_files_name_the_file_and_the_entry(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=message.replace("[", r"\[")) as caught:
        read_coco(path)
    assert caught.value.where == str(path)


def test_no_truth_and_duplicate_canvases_are_refused():
    with pytest.raises(InputError, match="no ground truth"):
        evaluate([], PREDICTIONS, 0.5)
    with pytest.raises(InputError, match="twice") as caught:
        evaluate([TRUTH[0], TRUTH[0]], PREDICTIONS, 0.5)
    assert caught.value.where == "c1"


URL = "http://localhost:8000/evaluations/e1"


def record(calibration=None):
    evaluation = evaluate(TRUTH, PREDICTIONS, 0.5)
    return quality.make_record(evaluation, url=URL, created="2025-05-01T12:00:00+00:00", model_sha256="ab" * 32,
                               model_name="demo-yolo.pt", truth=["http://localhost:8000/k1/verdicts/"],
                               calibration=calibration)


def test_dqv_output_parses_into_the_expected_triples():
    from rdflib import Graph
    from rdflib.compare import isomorphic

    from enricher.jsonld import to_graph

    turtle = quality.to_turtle(record())
    graph = Graph().parse(data=turtle, format="turtle")
    assert isomorphic(graph, to_graph(quality.to_jsonld(record()), None))
    evaluation = URIRef(URL)
    dog, whole = URIRef(URL + "#class-dog"), URIRef(URL + "#subject")
    precision = URIRef(URL + "#dog-precision")
    assert (evaluation, RDF.type, DQV.QualityMeasurementDataset) in graph
    assert (precision, RDF.type, DQV.QualityMeasurement) in graph
    assert (precision, DQV.computedOn, dog) in graph
    assert (precision, DQV.isMeasurementOf, ENR.precision) in graph
    assert graph.value(precision, DQV.value).toPython() == pytest.approx(2 / 3)
    assert (precision, QB.dataSet, evaluation) in graph
    assert (URIRef(URL + "#dog-falseNegatives"), DQV.value, Literal(1, datatype=XSD.integer)) in graph
    assert (URIRef(URL + "#recall"), DQV.computedOn, whole) in graph
    assert graph.value(URIRef(URL + "#recall"), DQV.value).toPython() == 0.5
    assert (dog, DCTERMS.isPartOf, whole) in graph
    assert (dog, DCTERMS.subject, URIRef("https://w3id.org/enricher/coco/dog")) in graph
    assert (dog, ENR.falsePositiveExample, URIRef("https://example.org/anno/d2")) in graph
    assert (whole, DCTERMS.source, URIRef("https://example.org/m1")) in graph
    agent = graph.value(whole, URIRef("http://www.w3.org/ns/prov#wasAttributedTo"))
    assert graph.value(agent, ENR.modelSha256) == Literal("ab" * 32)
    # one measurement per metric and class (ECE too: both classes have detections)
    assert len(set(graph.subjects(RDF.type, DQV.QualityMeasurement))) == 3 * len(quality.METRICS)


def test_every_metric_is_defined_in_the_metrics_vocabulary():
    from rdflib import Graph

    vocab = Graph().parse(METRICS_VOCABULARY)
    assert {ENR[m] for m in quality.METRICS} <= set(vocab.subjects(RDF.type, DQV.Metric))


def test_html_report_holds_the_table_the_plots_and_links():
    params = calibrate.fit(evaluate(TRUTH, PREDICTIONS, 0.5).pairs)
    page = report.to_html(record({"id": "http://localhost:8000/calibrations/c1", "method": "platt", "params": params}))
    assert page.count("<svg") == 2
    assert "Precision-recall at IoU 0.5" in page and "Reliability" in page and "calibrated (ECE" in page
    assert '<a href="https://example.org/anno/d2">' in page
    assert "<td>dog</td><td>3</td><td>3</td><td>2</td><td>1</td><td>1</td><td>0.667</td>" in page


def test_agrees_with_ultralytics_validation(tmp_path, monkeypatch, config):
    """The demo model on 8 synthetic pages with objects smaller than it was trained on (so AP is far from
    its ceiling), validated by ultralytics and by us on the same pages and the same NMS settings.

    Tolerance 0.05 on mAP50 and mAP50-95: ultralytics integrates a 101-point interpolated PR curve with
    the trapezoid rule and matches by highest IoU over all detections, COCO samples the precision
    envelope at 101 recall points and matches greedily by score; with a few hundred detections the two
    differ by a few thousandths to a few hundredths. A wrong class mapping, scope or box convention
    moves the figures by far more."""
    import sys

    from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
    from enricher.detect import Detector
    from enricher.yolo import load_yolo

    model = load_yolo(DEMO_WEIGHTS)  # first: it imports ultralytics offline
    import ultralytics.data.utils

    monkeypatch.setattr(ultralytics.data.utils, "check_font", lambda *a, **k: None)  # plots off: no font needed
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "samples"))
    import synth

    size, pages = 192, 8
    for folder in ("images/val", "labels/val"):
        (tmp_path / folder).mkdir(parents=True)
    truth, images = [], []
    for i in range(pages):
        image, objects = synth.make_image(500 + i, (size, size), 5, 8, 28)
        image.save(tmp_path / f"images/val/p{i}.png")
        (tmp_path / f"labels/val/p{i}.txt").write_text("".join(
            f"{synth.CLASSES.index(label)} {(x + w / 2) / size} {(y + h / 2) / size} {w / size} {h / size}\n"
            for label, x, y, w, h in objects))
        truth.append(TruthCanvas("k", "m", f"c{i}", i, size, size, None, None, frozenset(synth.CLASSES),
                                 tuple(TruthBox(o[0], o[1:], f"t{i}-{j}") for j, o in enumerate(objects))))
        images.append(image)
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(synth.CLASSES))
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/val\nval: images/val\nnames:\n{names}")
    sys.modules.pop("synth", None)

    theirs = model.val(data=str(tmp_path / "data.yaml"), imgsz=size, batch=pages, device="cpu",
                       conf=0.001, iou=0.7, max_det=300, plots=False, verbose=False, project=str(tmp_path / "runs"))
    # the same NMS settings as ultralytics' validation, through our own detector
    detector = Detector(config(weights=str(DEMO_WEIGHTS), conf=0.001, iou=0.7, max_det=300, imgsz=size,
                               batch=pages, device="cpu"))
    predictions = [Prediction(f"c{i}", d.label, d.box, d.score, f"p{i}-{j}")
                   for i, found in enumerate(detector.predict(images)) for j, d in enumerate(found)]
    ours = evaluate(truth, predictions, 0.25).overall
    assert 0.3 < theirs.box.map50 < 0.95  # far from the ceiling, so agreement means something
    assert abs(ours.ap50 - theirs.box.map50) <= 0.05
    assert abs(ours.ap - theirs.box.map) <= 0.05


def test_cli_evaluates_the_reviews_in_the_store_and_records_the_calibration(tmp_path, config):
    from click.testing import CliRunner
    from reviewed import EXPECTED, MODEL, SHA, fill

    from enricher.cli import main
    from enricher.store import open_store

    database = tmp_path / "db.sqlite3"
    with open_store(database) as store:
        key, _ = fill(store, config)
    out = tmp_path / "report"
    outcome = CliRunner().invoke(main, ["evaluate", "--database", str(database), "--base-url", config.base_url,
                                        "--threshold", "0.5", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    rows = {line.split()[0]: tuple(int(v) for v in line.split()[1:6]) for line in outcome.output.splitlines()
            if line.split() and line.split()[0] in EXPECTED}
    assert rows == EXPECTED
    assert {p.name for p in out.iterdir()} == {"evaluation.jsonld", "evaluation.ttl", "report.html", "pr.svg",
                                               "reliability.svg"}
    with open_store(database) as store:
        [stored] = store.evaluations(SHA, key)
        calibration = store.calibration(SHA, key)
        assert store.models() == store.models([key]) == [(SHA, MODEL)] and store.models(["0" * 16]) == []
        assert store.model_name(SHA) == MODEL and store.model_name("0" * 64) is None
        assert store.calibration_by_id(calibration.id) == calibration and store.calibration_by_id("none") is None
    assert stored.document["id"] == f"{config.base_url}{key}/evaluations/{stored.id}"
    assert stored.document["calibration"]["id"] == f"{config.base_url}calibrations/{calibration.id}"
    assert calibrate.apply(calibration.params, "dog", 0.9) != 0.9
    document = json.loads((out / "evaluation.jsonld").read_text())
    assert document["@graph"][0]["id"] == stored.document["id"]
    assert outcome.output.rstrip().endswith(stored.document["id"])


def test_cli_says_in_one_line_when_nothing_was_reviewed(tmp_path):
    from click.testing import CliRunner

    from enricher.cli import main

    outcome = CliRunner().invoke(main, ["evaluate", "--database", str(tmp_path / "empty.sqlite3"), "--model", "a" * 64])
    assert outcome.exit_code == 1
    assert outcome.output.strip() == "enricher: error: no canvas was reviewed exhaustively: nothing to measure against (all manifests)"


def test_an_evaluation_survives_its_stored_form():
    from enricher.evaluate import Evaluation

    evaluation = evaluate(TRUTH, PREDICTIONS, 0.5)
    assert Evaluation.from_dict(json.loads(json.dumps(evaluation.to_dict()))) == evaluation


def test_more_than_a_hundred_detections_of_a_class_on_one_canvas_are_not_capped():
    # COCO keeps 100 detections per image and class by default: a tiled canvas may hold more
    boxes = [("dog", (x * 20.0, y * 20.0, 10.0, 10.0)) for x in range(12) for y in range(10)]
    found = [pred("c1", "dog", box, 0.9 - n / 1000, f"d{n}") for n, (_, box) in enumerate(boxes)]
    dog = by_label(evaluate([canvas("c1", {"dog"}, *boxes, size=(300, 300))], found, 0.5))["dog"]
    assert (dog.truths, dog.tp, dog.fn) == (120, 120, 0)
    assert dog.ap50 == pytest.approx(1.0)
