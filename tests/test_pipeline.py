"""The whole data path on the bundled samples: real IIIF servers, real YOLO inference with the demo
weights, boxes checked against the generator's ground truth in canvas coordinates."""

from __future__ import annotations

import pytest
from conformance import assert_iiif3, assert_w3c_annotation
from factories import make_manifest
from sampledata import SAMPLES, SCENES, TRUTH, iou, recall, specs

from enricher.annotate import annotation_page
from enricher.config import DEMO_WEIGHTS
from enricher.errors import RegionError
from enricher.fetch import Fetcher
from enricher.imageserver import write_static_tree
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher, parse_region


@pytest.fixture
def enrich(config, demo_detector):
    """Enrich a manifest document with the demo detector and the given setting overrides."""
    fetchers = []

    def run(document, **options):
        settings = config(weights=str(DEMO_WEIGHTS), **options.pop("settings", {}))
        fetcher = Fetcher(settings)
        fetchers.append(fetcher)
        manifest = parse_manifest(document, document.get("id") or document.get("@id"))
        return Enricher(settings, detector=demo_detector, fetcher=fetcher).enrich(manifest, **options)

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


def test_tiled_mode_finds_small_objects_a_downscaled_pass_misses(enrich, sample_server):
    document = make_manifest(3, specs(["large.jpg"]), f"{sample_server}/iiif/3")
    tiled = enrich(document, settings={"tiled": "on"}).canvases[0]
    single = enrich(document, settings={"tiled": "off"}).canvases[0]
    truth = TRUTH["large.jpg"]
    assert recall(tiled.detections, truth) == 1.0 and len(tiled.detections) == len(truth)  # 16 of 16, once each
    assert recall(single.detections, truth) <= 0.3
    auto = enrich(document).canvases[0]  # auto picks tiling for a 6000 px scan
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
    import threading

    document = make_manifest(3, specs(SCENES), f"{sample_server}/iiif/3")
    seen = []

    def handler(name, data):
        seen.append((name, threading.current_thread() is not threading.main_thread()))

    result = enrich(document, on_event=handler, settings={"batch": 2})
    # every event handled by the time enrich returns, each on the helper thread
    assert seen == [("manifest_started", True)] + [("canvas_done", True)] * len(SCENES)
    assert len(result.canvases) == len(SCENES)


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
