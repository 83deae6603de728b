"""The whole data path on the bundled samples: real IIIF servers, real YOLO inference with the demo
weights, boxes checked against the generator's ground truth in canvas coordinates."""

from __future__ import annotations

import hashlib
import os
import sys
import threading

import pytest
from conformance import assert_iiif3, assert_w3c_annotation
from factories import load_fixture, make_manifest
from sampledata import SAMPLES, SCENES, TRUTH, recall, specs

from enricher.annotate import annotation_page
from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detector
from enricher.errors import ManifestError, RegionError
from enricher.fetch import Fetcher
from enricher.geometry import iou, parse_region
from enricher.imageserver import write_static_tree
from enricher.manifest import parse_manifest
from enricher.pipeline import HELPER_NICENESS, Enricher


@pytest.fixture
def enrich(config, demo_detector):
    """Enrich a manifest document with the demo detector and the given setting overrides."""
    fetchers = []

    def run(document, **options):
        settings = config(weights=str(DEMO_WEIGHTS), **options.pop("settings", {}))
        detector = options.pop("detector", demo_detector)
        fetcher = Fetcher(settings)
        fetchers.append(fetcher)
        manifest = parse_manifest(document, document.get("id") or document.get("@id"))
        return Enricher(settings, detector=detector, fetcher=fetcher).enrich(manifest, **options)

    yield run
    for fetcher in fetchers:
        fetcher.close()


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("scale", [1, 2])
def test_boxes_land_on_the_generated_objects(enrich, sample_server, version, scale):
    document = make_manifest(version, specs(SCENES), f"{sample_server}/iiif/{version}", scale=scale)
    result = enrich(document)
    assert all(c.error is None for c in result.canvases)
    for item, name in zip(result.canvases, SCENES):
        assert recall(item.detections, TRUTH[name], scale) >= 0.8, name
        for det in item.detections:
            x, y, w, h = det.box
            assert 0 <= x and 0 <= y and x + w <= item.canvas.width and y + h <= item.canvas.height


@pytest.mark.parametrize("version", [2, 3])
def test_level0_static_tree(enrich, tmp_path, version):
    """A level-0 server answers only its listed sizes and tiles; the planner asks for nothing else."""
    import shutil
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(SAMPLES / SCENES[0], images)
    requested = []

    class Files(SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requested.append((self.path, int(code)))

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Files, directory=str(tmp_path / "tree")))
    base = f"http://127.0.0.1:{server.server_port}"
    write_static_tree(images, tmp_path / "tree", base, "2.1" if version == 2 else "3.0")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        document = make_manifest(version, specs(SCENES[:1]), base, level=0)
        result = enrich(document)
    finally:
        server.shutdown()
        server.server_close()
    assert result.canvases[0].error is None
    assert recall(result.canvases[0].detections, TRUTH[SCENES[0]]) >= 0.8
    assert requested and all(code == 200 for _, code in requested), requested


def test_region_mode_requests_only_the_region(enrich, sample_server):
    truth = TRUTH[SCENES[0]]
    target = truth[0]["box"]
    # the demo model knows objects up to about 150 px at its inference size, so the region is a
    # third of the canvas rather than a tight crop that the model would see blown up fourfold
    x, y = max(0, target[0] - 300), max(0, target[1] - 300)
    region = (x, y, min(1200, target[0] + target[2] + 300) - x, min(900, target[1] + target[3] + 300) - y)
    document = make_manifest(3, specs(SCENES[:1]), f"{sample_server}/iiif/3")
    result = enrich(document, region=parse_region("xywh=%d,%d,%d,%d" % tuple(round(v) for v in region)))
    found = result.canvases[0].detections
    assert any(d.label == truth[0]["label"] and iou(d.box, target) >= 0.5 for d in found)
    for det in found:
        x, y, w, h = det.box
        assert region[0] - 1 <= x and x + w <= region[0] + region[2] + 1
        assert region[1] - 1 <= y and y + h <= region[1] + region[3] + 1


def test_region_outside_the_canvas_is_an_error(enrich, sample_server):
    document = make_manifest(3, specs(SCENES[:1]), f"{sample_server}/iiif/3")
    result = enrich(document, region=(50_000, 50_000, 10, 10))
    assert isinstance(result.canvases[0].error, RegionError)
    with pytest.raises(RegionError):
        parse_region("xywh=1,2,three,4")


class Remembering:
    """A detector answering an image it has seen before from memory, others from the model."""

    def __init__(self, detector: Detector) -> None:
        self._detector, self._seen = detector, {}

    def __getattr__(self, name: str):
        return getattr(self._detector, name)

    def predict(self, images: list) -> list:
        keys = [(image.size, hashlib.sha256(image.tobytes()).digest()) for image in images]
        missing = [n for n, key in enumerate(keys) if key not in self._seen]
        for n, found in zip(missing, self._detector.predict([images[n] for n in missing])):
            self._seen[keys[n]] = found
        return [self._seen[key] for key in keys]


def test_tiled_mode_finds_small_objects_a_downscaled_pass_misses(enrich, sample_server, demo_detector):
    document = make_manifest(3, specs(["large.jpg"]), f"{sample_server}/iiif/3")
    # auto sees the tiles "on" saw, answered from memory (a pass over a 6000 px scan's tiles takes
    # half a minute); had it not tiled, the model would see the downscaled scan and miss the objects
    detector = Remembering(demo_detector)
    tiled = enrich(document, settings={"tiled": "on"}, detector=detector).canvases[0]
    single = enrich(document, settings={"tiled": "off"}).canvases[0]
    truth = TRUTH["large.jpg"]
    assert recall(tiled.detections, truth) == 1.0 and len(tiled.detections) == len(truth)  # 16 of 16, once each
    assert recall(single.detections, truth) <= 0.3
    auto = enrich(document, detector=detector).canvases[0]  # auto picks tiling for a 6000 px scan
    assert recall(auto.detections, truth) == 1.0


def test_plain_image_without_service(enrich, sample_server):
    document = make_manifest(3, specs(SCENES[:1]), f"{sample_server}/iiif/3", service=False)
    result = enrich(document)
    assert result.canvases[0].error is None
    assert recall(result.canvases[0].detections, TRUTH[SCENES[0]]) >= 0.8


@pytest.mark.conformance
def test_published_annotations_and_pages_conform(enrich, sample_server, conformance_dir):
    document = make_manifest(3, specs(SCENES), f"{sample_server}/iiif/3", scale=2)
    result = enrich(document)
    assert result.annotation_count > 0
    for item in result.canvases:
        for annotation in item.annotations:
            assert_w3c_annotation({**annotation}, conformance_dir)
        page = annotation_page(item.canvas, item.annotations, f"http://127.0.0.1/pages/{item.canvas.index}.json")
        assert_iiif3(page, conformance_dir)


def test_ids_are_stable_across_runs(enrich, sample_server):
    document = make_manifest(3, specs(SCENES[:1]), f"{sample_server}/iiif/3")
    first = [a["id"] for a in enrich(document).canvases[0].annotations]
    second = [a["id"] for a in enrich(document).canvases[0].annotations]
    assert first and sorted(first) == sorted(second)


def test_events_come_in_order_off_the_enriching_thread(enrich, sample_server):
    document = make_manifest(3, specs(SCENES), f"{sample_server}/iiif/3")
    seen = []

    def handler(name, data):
        seen.append((name, threading.current_thread() is not threading.main_thread()))

    result = enrich(document, on_event=handler, settings={"batch": 2})
    # every event handled by the time enrich returns, each on the helper thread
    assert seen == [("manifest_started", True)] + [("canvas_done", True)] * len(SCENES)
    assert len(result.canvases) == len(SCENES)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_fetching_and_writing_run_at_a_lower_priority_than_the_model(enrich, sample_server):
    document = make_manifest(3, specs(SCENES), f"{sample_server}/iiif/3")
    events, fetchers = set(), set()

    def niceness(thread: threading.Thread) -> int:
        return os.getpriority(os.PRIO_PROCESS, thread.native_id)

    def handler(name, data):
        events.add(niceness(threading.current_thread()))
        fetchers.update(niceness(t) for t in threading.enumerate() if t.name.startswith("enricher-fetch"))

    enrich(document, on_event=handler, settings={"batch": 1})
    lowered = min(19, niceness(threading.current_thread()) + HELPER_NICENESS)
    assert events == {lowered}
    assert fetchers == {lowered}


def test_an_error_in_the_event_handler_stops_the_run(enrich, sample_server):
    document = make_manifest(3, specs(SCENES), f"{sample_server}/iiif/3")
    done = []

    class Stop(Exception):
        pass

    def handler(name, data):
        if name == "canvas_done":
            done.append(data["result"].canvas.index)
            raise Stop

    with pytest.raises(Stop):
        enrich(document, on_event=handler, settings={"batch": 1})
    assert done == [0]  # the events after the failing one are dropped


def _moved(name: str, crop=(0, 0, 10_000, 10_000), at=(0, 0), scale: float = 1.0) -> list[dict]:
    """The true objects of sample NAME inside CROP (image pixels), as they land on a canvas where the
    crop's corner is at AT and its pixels are SCALE canvas units."""
    cx, cy, cw, ch = crop
    moved = []
    for obj in TRUTH[name]:
        x, y, w, h = obj["box"]
        if cx <= x and cy <= y and x + w <= cx + cw and y + h <= cy + ch:
            box = (at[0] + (x - cx) * scale, at[1] + (y - cy) * scale, w * scale, h * scale)
            moved.append({"label": obj["label"], "box": box})
    return moved


def _on_canvas(item) -> bool:
    return all(0 <= x and 0 <= y and x + w <= item.canvas.width and y + h <= item.canvas.height for x, y, w, h in
               (d.box for d in item.detections))


def test_a_region_cut_out_by_an_image_api_selector(enrich, sample_server):
    """IIIF Cookbook 0299: the canvas shows a region of the image, here at twice its size."""
    (item,) = enrich(load_fixture("image-api-selector.json", sample_server)).canvases
    truth = _moved(SCENES[0], crop=(400, 200, 800, 600), scale=2)
    assert item.error is None and len(truth) == 4 and _on_canvas(item)
    assert recall(item.detections, truth) >= 0.75
    assert not any(d.label == "bird" for d in item.detections)  # the bird lies outside the region


@pytest.fixture(scope="module")
def turned_server(tmp_path_factory):
    """An image server whose pages were scanned turned: the selectors in rotated.json set them upright."""
    from PIL import Image

    from enricher.imageserver import serve_images

    folder = tmp_path_factory.mktemp("turned")
    upright = Image.open(SAMPLES / "scene-4.jpg")
    flip, ccw90, turn180, cw90 = (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_90,
                                  Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
    scans = {"sideways": upright.transpose(ccw90).transpose(flip), "ccw": upright.transpose(ccw90),
             "upside-down": upright.transpose(turn180), "cw": upright.transpose(cw90)}
    for name, image in scans.items():
        image.save(folder / f"{name}.jpg", quality=95)
    with serve_images(folder) as base:
        yield base


@pytest.mark.parametrize("scan, rotation", [("sideways", "!90"), ("ccw", "90"), ("upside-down", "180"), ("cw", "270")])
def test_a_rotation_sets_a_turned_scan_upright(enrich, turned_server, scan, rotation):
    """The model sees the page as the canvas shows it, and the boxes land on the upright page."""
    document = load_fixture("rotated.json", turned_server)
    body = document["items"][0]["items"][0]["items"][0]["body"]
    body["source"]["service"][0]["id"] = f"{turned_server}/iiif/3/{scan}"
    body["selector"]["rotation"] = rotation
    (item,) = enrich(document).canvases
    assert item.error is None and _on_canvas(item)
    assert recall(item.detections, TRUTH["scene-4.jpg"]) >= 0.8


def test_a_fragment_selector_on_a_plain_image(enrich, sample_server):
    """Presentation 2.1: an oa:SpecificResource with an xywh FragmentSelector, the image without a service."""
    (item,) = enrich(load_fixture("fragment-selector-v2.json", sample_server)).canvases
    truth = _moved("scene-2.jpg", crop=(300, 100, 900, 800))
    assert item.error is None and len(truth) == 6 and _on_canvas(item)
    assert recall(item.detections, truth) >= 0.8


def test_a_choice_is_enriched_with_its_first_item(enrich, sample_server):
    (item,) = enrich(load_fixture("choice.json", sample_server)).canvases
    assert item.error is None
    assert recall(item.detections, TRUTH["scene-3.jpg"]) >= 0.66
    assert recall(item.detections, TRUTH["scene-1.jpg"]) == 0  # the other item is not looked at


def test_images_composed_on_one_canvas_each_land_where_their_target_puts_them(enrich, sample_server):
    """IIIF Cookbook 0036: scene-1 fills the left of the canvas, scene-3 is shown at half size on the right."""
    document = load_fixture("composition.json", sample_server)
    left, right = _moved("scene-1.jpg"), _moved("scene-3.jpg", at=(1200, 150), scale=0.5)
    (item,) = enrich(document).canvases
    assert item.error is None and _on_canvas(item)
    assert recall(item.detections, left) >= 0.8 and recall(item.detections, right) >= 0.66
    # a region over the right image only: only that image is looked at
    (part,) = enrich(document, region=parse_region("xywh=1150,0,500,900")).canvases
    assert recall(part.detections, right) >= 0.66
    assert all(d.box[0] >= 1150 - 1 for d in part.detections)


def test_canvases_without_an_image_fail_or_are_skipped_and_the_rest_is_enriched(enrich, sample_server):
    """Before, one such canvas ended the whole run in a TypeError."""
    done = []
    result = enrich(load_fixture("mixed-canvases.json", sample_server), on_event=lambda name, data: done.append(data))
    by_label = {item.canvas.label: item for item in result.canvases}
    image, no_body = by_label["an image"], by_label["a painting annotation without a body"]
    assert image.error is None and recall(image.detections, TRUTH["scene-1.jpg"]) >= 0.8
    assert isinstance(no_body.error, ManifestError) and "has no body" in str(no_body.error)
    assert no_body.canvas.id in str(no_body.error) and not no_body.annotations
    skipped = [item for item in result.canvases if item.skipped]
    assert len(skipped) == 4 and all(item.error is None and not item.detections for item in skipped)
    sized = by_label["no size on the canvas or its image: the info.json tells"]
    assert (sized.canvas.width, sized.canvas.height) == (1200, 900)
    assert recall(sized.detections, TRUTH["scene-4.jpg"]) >= 0.8 and _on_canvas(sized)
    assert sorted(data["result"].canvas.index for data in done[1:]) == list(range(7))  # each canvas reported once
    v2 = enrich(load_fixture("mixed-canvases-v2.json", sample_server)).canvases
    assert [bool(item.error) for item in v2] == [False, True, False, False]
    assert "has no resource" in str(v2[1].error) and v2[2].skipped == "nothing is painted on it"
    assert (v2[3].canvas.width, v2[3].canvas.height) == (1200, 900) and recall(v2[3].detections, TRUTH["scene-4.jpg"]) >= 0.8
