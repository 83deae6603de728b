"""Training export: COCO that pycocotools loads, YOLO labels in image pixels, only exhaustive canvases, no
manifest whose rights forbid AI use, a frozen test split, and a YOLO set that trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_manifest
from pycocotools.coco import COCO
from sampledata import TRUTH

from enricher.datafiles import DEMO_WEIGHTS
from enricher.errors import ConfigError
from enricher.export import export, hashed_split, parse_ratios
from enricher.groundtruth import TruthBox, TruthCanvas
from enricher.publish import manifest_key
from enricher.rights import ai_use

CLASSES = ("dog", "horse", "bird", "clock", "book", "cup", "stop sign")
NO_AI = "https://www.wikidata.org/wiki/Q127515624"


def manifest(base: str, name: str, scenes, scale: float = 1, **extra) -> dict:
    """A v3 manifest of sample SCENES (each canvas SCALE times its 1200x900 or 900x1200 image) plus EXTRA properties."""
    sizes = {"scene-1": (1200, 900), "scene-2": (1200, 900), "scene-3": (900, 1200), "scene-4": (1200, 900)}
    document = make_manifest(3, [(s, *sizes[s]) for s in scenes], f"{base}/iiif/3", scale,
                             manifest_id=f"{base}/manifests/{name}.json", label=name)
    return {**document, **extra}


def reviewed(document: dict, labels=CLASSES) -> list[TruthCanvas]:
    """Every canvas of DOCUMENT reviewed exhaustively for LABELS, its true boxes from truth.json in canvas units."""
    canvases = []
    for index, canvas in enumerate(document["items"]):
        body = canvas["items"][0]["items"][0]["body"]
        scene = canvas["label"]["en"][0]
        sx, sy = canvas["width"] / body["width"], canvas["height"] / body["height"]
        boxes = tuple(TruthBox(t["label"], (t["box"][0] * sx, t["box"][1] * sy, t["box"][2] * sx, t["box"][3] * sy),
                               f"{canvas['id']}/truth/{n}") for n, t in enumerate(TRUTH[f"{scene}.jpg"]))
        canvases.append(TruthCanvas(manifest_key(document["id"]), document["id"], canvas["id"], index, canvas["width"],
                                    canvas["height"], body["service"][0]["id"], body["id"], frozenset(labels), boxes))
    return canvases


def run(documents: list[dict], out: Path, fetcher, config, truth=None, **options):
    truth = truth if truth is not None else [c for d in documents for c in reviewed(d)]
    return export(truth, out, fetcher, config, classes=CLASSES,
                  documents={manifest_key(d["id"]): d for d in documents}, **options)


def labels(path: Path) -> list[tuple[int, float, float, float, float]]:
    return [(int(p[0]), *map(float, p[1:])) for p in (line.split() for line in path.read_text().splitlines())]


def test_coco_loads_in_pycocotools_with_every_box(sample_server, fetcher, config, tmp_path):
    documents = [manifest(sample_server, "a", ["scene-1", "scene-2"]), manifest(sample_server, "b", ["scene-3"])]
    result = run(documents, tmp_path, fetcher, config, ratios=(0.5, 0.0, 0.5))
    loaded = {}
    for path in result.files:
        if path.suffix == ".json":
            loaded[path.stem.removeprefix("instances_")] = COCO(str(path))
    assert set(loaded) == {result.splits[d["id"]] for d in documents}
    assert sum(len(c.getImgIds()) for c in loaded.values()) == 3
    assert sum(len(c.getAnnIds()) for c in loaded.values()) == sum(len(TRUTH[f"scene-{i}.jpg"]) for i in (1, 2, 3))
    for coco in loaded.values():
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        for image in coco.loadImgs(coco.getImgIds()):
            assert (tmp_path / image["file_name"]).is_file()
    split = result.splits[documents[1]["id"]]
    coco = loaded[split]
    (image,) = [i for i in coco.loadImgs(coco.getImgIds()) if i["canvas"] == documents[1]["items"][0]["id"]]
    boxes = sorted((coco.loadCats(a["category_id"])[0]["name"], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(image["id"])))
    assert boxes == sorted((t["label"], [float(v) for v in t["box"]]) for t in TRUTH["scene-3.jpg"])


def test_yolo_labels_are_image_pixels_when_the_canvas_is_twice_the_image(sample_server, fetcher, config, tmp_path):
    document = manifest(sample_server, "double", ["scene-2"], scale=2)
    assert document["items"][0]["width"] == 2400  # the canvas, while the image is 1200x900
    result = run([document], tmp_path, fetcher, config, ratios=(1, 0, 0))
    (label_file,) = (tmp_path / "labels" / "train").glob("*.txt")
    (image_file,) = (tmp_path / "images" / "train").glob("*.jpg")
    assert label_file.stem == image_file.stem
    from PIL import Image

    assert Image.open(image_file).size == (1200, 900)  # full resolution, not the canvas size
    expected = sorted((CLASSES.index(t["label"]), (t["box"][0] + t["box"][2] / 2) / 1200, (t["box"][1] + t["box"][3] / 2) / 900,
                       t["box"][2] / 1200, t["box"][3] / 900) for t in TRUTH["scene-2.jpg"])
    found = sorted(labels(label_file))
    assert [line[0] for line in found] == [line[0] for line in expected]
    assert [v for line in found for v in line[1:]] == pytest.approx([v for line in expected for v in line[1:]], abs=2e-6)
    data = (tmp_path / "data.yaml").read_text()
    assert "names:" in data and "stop sign" in data and result.val_from_train


def test_only_exhaustively_reviewed_canvases_are_exported(sample_server, fetcher, config, tmp_path):
    document = manifest(sample_server, "partly", ["scene-1", "scene-4"])
    full, partial = reviewed(document)
    partial = TruthCanvas(**{**vars(partial), "labels": frozenset({"dog", "horse"})})
    result = run([document], tmp_path, fetcher, config, truth=[full, partial], ratios=(1, 0, 0))
    assert result.images["train"] == 1
    assert [p.stem for p in (tmp_path / "images" / "train").iterdir()] == [f"{full.manifest_key}-0000"]
    (skipped,) = result.skipped
    assert skipped.canvas_id == partial.canvas_id and "not reviewed exhaustively for bird, book" in skipped.reason
    report = json.loads((tmp_path / "export.json").read_text())
    assert report["skipped"][0]["canvas_id"] == partial.canvas_id
    assert report["created"].endswith("Z")  # the package's one timestamp format (enricher.clock)


@pytest.mark.parametrize(
    "statement",
    [
        {"rights": NO_AI},
        {"rights": "http://www.wikidata.org/entity/Q127516405"},  # No Image AI
        {"requiredStatement": {"label": {"en": ["No AI"]}, "value": {"en": ["Not for training."]}}},
        {"metadata": [{"label": {"en": ["tdm-reservation"]}, "value": {"none": ["1"]}}]},
        {"seeAlso": [{"id": "https://example.org/.well-known/tdmrep.json", "type": "Dataset"}]},
        {"rights": "https://www.wikidata.org/wiki/Q127518037"},  # consent required, none recorded
    ],
    ids=["no-ai", "no-image-ai", "required-statement", "tdm-metadata", "tdm-link", "consent"],
)
def test_a_manifest_whose_rights_forbid_ai_is_skipped_and_reported(sample_server, fetcher, config, tmp_path, statement):
    allowed = manifest(sample_server, "open", ["scene-1"], rights="http://creativecommons.org/publicdomain/zero/1.0/")
    forbidden = manifest(sample_server, "closed", ["scene-4"], **statement)
    result = run([allowed, forbidden], tmp_path, fetcher, config, ratios=(1, 0, 0))
    assert [(s.manifest_id, s.canvas_id) for s in result.skipped] == [(forbidden["id"], None)]
    assert result.images["train"] == 1 and forbidden["id"] not in result.splits
    assert not list(tmp_path.glob(f"images/*/{manifest_key(forbidden['id'])}-*"))
    coco = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    assert {i["manifest"] for i in coco["images"]} == {allowed["id"]}
    assert coco["licenses"] == [{"id": 1, "name": allowed["rights"], "url": allowed["rights"]}]
    assert {i["license"] for i in coco["images"]} == {1}
    reason = json.loads((tmp_path / "export.json").read_text())["skipped"][0]["reason"]
    assert reason == result.skipped[0].reason and ("TDM" in reason or "0514" in reason)


def test_consent_and_attribution_let_a_manifest_in_with_its_credit(sample_server, fetcher, config, tmp_path):
    consent = manifest(sample_server, "consent", ["scene-1"], rights="https://www.wikidata.org/wiki/Q127518037")
    credit = manifest(sample_server, "credit", ["scene-4"], rights="https://www.wikidata.org/wiki/Q127516763")
    result = run([consent, credit], tmp_path, fetcher, config, ratios=(1, 0, 0), consented=[manifest_key(consent["id"])])
    assert result.skipped == [] and result.images["train"] == 2
    assert result.credits == {consent["id"]: f"consent <{consent['id']}>", credit["id"]: f"credit <{credit['id']}>"}


def test_a_canvas_marked_no_ai_or_a_manifest_without_document_is_left_out(sample_server, fetcher, config, tmp_path):
    document = manifest(sample_server, "mixed", ["scene-1", "scene-4"])
    document["items"][1]["rights"] = NO_AI
    orphan = manifest(sample_server, "orphan", ["scene-3"])
    truth = reviewed(document) + reviewed(orphan)
    result = export(truth, tmp_path, fetcher, config, classes=CLASSES, documents={manifest_key(document["id"]): document},
                    ratios=(1, 0, 0))
    assert result.images["train"] == 1
    reasons = {(s.manifest_id, s.canvas_id): s.reason for s in result.skipped}
    assert "No AI" in reasons[(document["id"], document["items"][1]["id"])]
    assert "rights cannot be checked" in reasons[(orphan["id"], None)]


def test_the_test_split_stays_frozen_when_new_manifests_arrive(sample_server, fetcher, config, tmp_path):
    first = [manifest(sample_server, "m1", ["scene-1"]), manifest(sample_server, "m2", ["scene-4"])]
    result = run(first, tmp_path, fetcher, config, ratios=(0, 0, 1), formats=["coco"])
    assert set(result.splits.values()) == {"test"}
    later = first + [manifest(sample_server, "m3", ["scene-3"])]
    again = run(later, tmp_path, fetcher, config, ratios=(1, 0, 0), formats=["coco"])
    assert [again.splits[d["id"]] for d in later] == ["test", "test", "train"]
    assert again.images == {"test": 2, "train": 1}
    recorded = json.loads((tmp_path / "splits.json").read_text())["manifests"]
    assert {k: v["split"] for k, v in recorded.items()} == {d["id"]: s for d, s in zip(later, ["test", "test", "train"])}
    assert not (tmp_path / "labels").exists()  # COCO only


def test_a_damaged_split_record_stops_the_export(sample_server, fetcher, config, tmp_path):
    (tmp_path / "splits.json").write_text('{"manifests": {"x": {"split": "holdout"}}}')
    with pytest.raises(ConfigError, match="recorded splits"):
        run([manifest(sample_server, "m1", ["scene-1"])], tmp_path, fetcher, config)


def test_split_by_hash_is_deterministic_and_follows_the_ratios():
    ids = [f"https://example.org/m/{i}" for i in range(2000)]
    splits = [hashed_split(i, (0.8, 0.1, 0.1)) for i in ids]
    assert splits == [hashed_split(i, (0.8, 0.1, 0.1)) for i in ids]
    assert 0.75 < splits.count("train") / len(ids) < 0.85 and splits.count("test") > 100
    assert {hashed_split(i, (0, 0, 1)) for i in ids[:50]} == {"test"}
    with pytest.raises(ConfigError, match="summing to 1"):
        parse_ratios("0.8,0.3,0.1")


def test_rights_of_the_cookbook_recipe_examples():
    """The four requiredStatement examples of IIIF Cookbook recipe 0514, and a licence that says nothing of AI."""
    def said(label: str, value: str) -> dict:
        return {"requiredStatement": {"label": {"en": [label]}, "value": {"en": [value]}}}

    assert not ai_use(said("No AI", "Material ... should not be used for AI or ML training datasets.")).allowed
    assert not ai_use(said("No Image AI", "Image-based material ...")).allowed
    assert not ai_use(said("Regulated ML/AI Use Permitted - Consent Required", "... Prior Written Consent ...")).allowed
    assert ai_use(said("Regulated ML/AI Use Permitted - Consent Required", "..."), consented=True).allowed
    granted = ai_use(said("Regulated ML/AI Use Permitted - Attribution Required", "Credit the title and URL."))
    assert granted.allowed and "Credit the title" in granted.attribution
    assert ai_use({"rights": "http://creativecommons.org/licenses/by/4.0/", "metadata": [
        {"label": "tdm-reservation", "value": "0"}]}).allowed
    assert not ai_use({"license": "https://www.wikidata.org/wiki/Q127515163"}).allowed  # v2, as the recipe page gives it


def test_the_exported_yolo_set_trains(sample_server, fetcher, config, tmp_path, monkeypatch):
    pytest.importorskip("ultralytics")
    from enricher.yolo import load_yolo

    model = load_yolo(DEMO_WEIGHTS)  # first: it imports ultralytics offline
    import ultralytics.data.utils

    monkeypatch.setattr(ultralytics.data.utils, "check_font", lambda *a, **k: None)  # plots off: no font needed
    documents = [manifest(sample_server, "t", ["scene-1", "scene-3"])]
    result = run(documents, tmp_path / "data", fetcher, config, ratios=(1, 0, 0), long_side=320)
    data = next(p for p in result.files if p.name == "data.yaml")
    model.train(data=str(data), epochs=1, imgsz=64, batch=2, device="cpu", workers=0, plots=False, amp=False,
                val=False, project=str(tmp_path / "runs"), name="t", exist_ok=True, verbose=False)
    weights = Path(model.trainer.last)
    assert weights.is_file() and weights.stat().st_size > 1_000_000
    assert load_yolo(weights).names == dict(enumerate(CLASSES))


def test_cli_names_an_unknown_manifest_in_one_line(tmp_path):
    from click.testing import CliRunner

    from enricher.cli import main

    database = tmp_path / "db.sqlite3"
    outcome = CliRunner().invoke(main, ["export", "--database", str(database), "--out", str(tmp_path / "out"), "0123456789abcdef"])
    assert outcome.exit_code == 1
    assert outcome.output.strip() == f"enricher: error: no manifest 0123456789abcdef in the database ({database})"
    outcome = CliRunner().invoke(main, ["export", "--database", str(database), "--out", str(tmp_path / "out"), "--split", "1,1,1"])
    assert outcome.exit_code == 1 and "summing to 1" in outcome.output and len(outcome.output.strip().splitlines()) == 1


def test_a_level0_server_gives_the_full_image_from_its_tiles(static_tree, fetcher, config, tmp_path):
    """The gradient test image (1000x700, black mark at 600,200,80,60) on a canvas twice its size, served
    as a static level-0 tree: the export pastes the full-resolution tiles and maps the box to them."""
    canvas_id = f"{static_tree.url}/m/canvas/0"
    mark = TruthBox("clock", (1200.0, 400.0, 160.0, 120.0), "mark")
    canvas = TruthCanvas(manifest_key("m"), "m", canvas_id, 0, 2000, 1400, static_tree.service("gradient"), None,
                         frozenset(CLASSES), (mark,))
    document = {"id": "m", "type": "Manifest", "label": {"en": ["level 0"]}, "items": [{"id": canvas_id, "type": "Canvas"}]}
    export([canvas], tmp_path, fetcher, config, classes=CLASSES, documents={manifest_key("m"): document}, ratios=(1, 0, 0))
    from PIL import Image

    image = Image.open(tmp_path / "images" / "train" / f"{manifest_key('m')}-0000.jpg")
    assert image.size == (1000, 700)
    assert max(image.getpixel((640, 230))) < 40  # the mark's centre is black: the tiles sit where they belong
    ((cls, cx, cy, w, h),) = labels(tmp_path / "labels" / "train" / f"{manifest_key('m')}-0000.txt")
    assert cls == 3 and [cx, cy, w, h] == pytest.approx([640 / 1000, 230 / 700, 80 / 1000, 60 / 700], abs=1e-6)


def test_the_coco_export_reads_back_as_the_same_ground_truth(sample_server, fetcher, config, tmp_path):
    """enricher.evaluate.read_coco turns the exported file back into the canvases, in canvas coordinates."""
    from enricher.evaluate import read_coco

    document = manifest(sample_server, "round", ["scene-2", "scene-3"], scale=2)
    truth = reviewed(document)
    truth[1] = TruthCanvas(**{**vars(truth[1]), "labels": frozenset(CLASSES) | {"zebra"},
                              "boxes": (*truth[1].boxes, TruthBox("zebra", (10.0, 20.0, 300.0, 200.0), "z"))})
    run([document], tmp_path, fetcher, config, truth=truth, ratios=(1, 0, 0), formats=["coco"])
    back = {c.canvas_id: c for c in read_coco(tmp_path / "annotations" / "instances_train.json")}
    for canvas in truth:
        read = back[canvas.canvas_id]
        assert (read.width, read.height, read.manifest_id) == (canvas.width, canvas.height, canvas.manifest_id)
        assert read.labels == canvas.labels
        expected = sorted((b.label, b.annotation_id, b.box) for b in canvas.boxes)
        found = sorted((b.label, b.annotation_id, b.box) for b in read.boxes)
        assert [f[:2] for f in found] == [e[:2] for e in expected]
        assert [v for f in found for v in f[2]] == pytest.approx([v for e in expected for v in e[2]], abs=0.02)
    assert back[truth[0].canvas_id].labels == frozenset(CLASSES)  # zebra, appended, was not reviewed there


def test_cli_exports_what_curators_confirmed_in_the_database(sample_server, tmp_path):
    """Person-made boxes and exhaustiveness statements in a real store; a No AI manifest beside them."""
    from click.testing import CliRunner

    from enricher.annotate import ANNOTATION_CONTEXT, MEDIA_FRAGMENTS
    from enricher.cli import main
    from enricher.review import build_exhaustive, class_iri, text_body
    from enricher.store import open_store

    documents = [manifest(sample_server, "open", ["scene-1"]), manifest(sample_server, "closed", ["scene-4"], rights=NO_AI)]
    database = tmp_path / "db.sqlite3"
    with open_store(database) as store:
        for document in documents:
            key, canvas = manifest_key(document["id"]), reviewed(document)[0]
            store.save_manifest(key, document["id"], document["id"], document["id"], document)
            source = {"id": canvas.canvas_id, "type": "Canvas", "partOf": [{"id": document["id"], "type": "Manifest"}]}
            for box in canvas.boxes:
                store.create(key, {
                    "@context": ANNOTATION_CONTEXT, "id": f"{box.annotation_id}-person", "type": "Annotation",
                    "motivation": "tagging", "body": [text_body(box.label, "tagging", class_iri(box.label))],
                    "target": {"type": "SpecificResource", "source": source, "selector": {
                        "type": "FragmentSelector", "conformsTo": MEDIA_FRAGMENTS, "value": "xywh=" + ",".join(str(round(v)) for v in box.box)}},
                }, "curator")
            statement = build_exhaustive(verdict_id=f"{canvas.canvas_id}/exhaustive", canvas_id=canvas.canvas_id,
                                         manifest_id=document["id"], classes=CLASSES, creator={"type": "Person"}, created="2025-01-01T00:00:00Z")
            store.add_verdict(key, statement, "curator", target=None, canvas_id=canvas.canvas_id, judgement="exhaustive", version=None)
    out = tmp_path / "out"
    record = tmp_path / "kept" / "splits.json"
    outcome = CliRunner().invoke(main, ["export", "--database", str(database), "--out", str(out), "--weights", str(DEMO_WEIGHTS),
                                        "--split", "1,0,0", "--splits", str(record), "--allow-private", "all"])
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    assert lines[0].split() == ["train", "1", "images", str(len(TRUTH["scene-1.jpg"])), "boxes"]
    assert f"skipped manifest {documents[1]['id']}: rights {NO_AI} is the No AI statement" in outcome.output
    assert list(json.loads(record.read_text())["manifests"]) == [documents[0]["id"]] and not (out / "splits.json").exists()
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    assert len(coco.getAnnIds()) == len(TRUTH["scene-1.jpg"]) and [c["name"] for c in coco.dataset["categories"]] == list(CLASSES)
    assert len((out / "labels" / "train" / f"{manifest_key(documents[0]['id'])}-0000.txt").read_text().splitlines()) == len(TRUTH["scene-1.jpg"])
