"""Tiled mode: the merge of tiles and the whole-image pass on hand-made boxes, then the demo detector on
a generated scan served by the IIIF reference server, checked against the generator's true boxes."""

from __future__ import annotations

import sys

import pytest
from factories import make_manifest
from sampledata import iou

from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.detect import Detection
from enricher.errors import ConfigError
from enricher.fetch import Fetcher
from enricher.geometry import parse_region
from enricher.imageapi import ImagePart, ImageRequest, tile_starts
from enricher.imageserver import serve_images
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher
from enricher.tiling import merge_passes

sys.path.insert(0, str(PROJECT_ROOT / "samples"))
from synth import make_scan  # noqa: E402

SCAN = (3200, 2400)  # downscaled 5x for the whole pass: objects up to about 800 px stay in the demo model's range
TILE, OVERLAP = 640, 192


def request(x: int, y: int, w: int, h: int, scale: float = 1.0) -> ImageRequest:
    size = (round(w * scale), round(h * scale))
    return ImageRequest((x, y, w, h), size, (ImagePart("u", (x, y, w, h), size),))


# Two tiles side by side over a 1100 x 600 image, sharing the band x = 460..640, and the whole-image pass.
LEFT, RIGHT, WHOLE = request(0, 0, 640, 600), request(460, 0, 640, 600), request(0, 0, 1100, 600, 640 / 1100)


def test_a_piece_cut_by_a_border_goes_when_another_tile_sees_the_object_whole():
    piece = Detection("cat", 0.9, (560, 100, 80, 80))  # the left tile's right border cuts the dog: a "cat"
    dog = Detection("dog", 0.6, (560, 100, 120, 80))  # whole in the right tile
    assert merge_passes([LEFT, RIGHT], [[piece], [dog]]) == [dog]


def test_pieces_no_view_sees_whole_are_joined():
    left = Detection("horse", 0.7, (300, 100, 340, 200))  # cut by the left tile's right border
    right = Detection("horse", 0.8, (460, 100, 300, 200))  # cut by the right tile's left border
    (merged,) = merge_passes([LEFT, RIGHT], [[left], [right]])
    assert merged.box == (300, 100, 460, 200) and merged.score == 0.8


def test_the_tile_box_replaces_the_coarse_box_of_the_same_object():
    fine = Detection("clock", 0.5, (100, 100, 100, 100))
    coarse = Detection("clock", 0.9, (92, 95, 115, 112))
    (merged,) = merge_passes([WHOLE, LEFT], [[coarse], [fine]])
    assert merged.box == fine.box and merged.score == 0.9


def test_parts_of_an_object_no_tile_saw_whole_are_dropped():
    clock = Detection("clock", 0.8, (200, 50, 800, 500))  # larger than a tile: only the whole pass sees it
    parts = [Detection("book", 0.9, (300, 100, 60, 90)), Detection("bird", 0.7, (700, 300, 50, 40))]
    assert merge_passes([WHOLE, LEFT, RIGHT], [[clock], parts[:1], parts[1:]]) == [clock]


def test_things_on_an_object_a_tile_saw_whole_are_kept():
    horse = Detection("horse", 0.8, (100, 100, 300, 250))
    seen = [Detection("horse", 0.7, (102, 98, 296, 255)), Detection("bird", 0.6, (150, 120, 40, 30))]
    merged = merge_passes([WHOLE, LEFT], [[horse], seen])
    assert sorted(d.label for d in merged) == ["bird", "horse"]


def test_neighbours_seen_by_one_tile_stay_apart():
    pair = [Detection("cup", 0.9, (10, 10, 50, 50)), Detection("cup", 0.8, (70, 10, 50, 50))]
    assert len(merge_passes([LEFT], [pair])) == 2


@pytest.mark.parametrize("length", [640, 641, 1000, 2400, 3200, 6001])
def test_an_object_up_to_the_overlap_is_whole_in_a_tile(length):
    starts = tile_starts(0, length, TILE, OVERLAP)
    assert starts[0] == 0 and starts[-1] + TILE == max(length, TILE)
    for start in range(0, length - OVERLAP + 1, 7):
        assert any(s <= start and start + OVERLAP <= s + TILE for s in starts), start


@pytest.mark.parametrize("value", [0.2, "0.2", -5])
def test_an_overlap_that_is_not_whole_pixels_is_refused(value):
    with pytest.raises(ConfigError, match="tile_overlap"):
        load_config({"tile_overlap": value}, env={})


def interior_borders(length: int) -> list[int]:
    starts = tile_starts(0, length, TILE, OVERLAP)
    return sorted(set(starts[1:]) | {s + TILE for s in starts[:-1]})


X_BORDERS, Y_BORDERS = interior_borders(SCAN[0]), interior_borders(SCAN[1])


def crosses(start: int, length: int, borders: list[int]) -> bool:
    return any(start < b < start + length for b in borders)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A generated scan with objects of 20 to 720 px, many across the tiles' borders, served over IIIF;
    yields (manifest document, true objects)."""
    folder = tmp_path_factory.mktemp("scan")
    image, objects = make_scan(41, SCAN, 18, 20, 720, lines=(X_BORDERS, Y_BORDERS))
    image.save(folder / "scan.jpg", quality=90)
    with serve_images(folder) as base:
        yield make_manifest(3, [("scan", *SCAN)], f"{base}/iiif/3"), objects


@pytest.fixture(scope="module")
def enrich(config, demo_detector):
    """Enrich a manifest document with the demo detector in tiled mode."""

    def run(document, **options):
        settings = config(weights=str(DEMO_WEIGHTS), tiled="on", tile_size=TILE, tile_overlap=OVERLAP)
        with Fetcher(settings) as fetcher:
            manifest = parse_manifest(document, document["id"])
            return Enricher(settings, detector=demo_detector, fetcher=fetcher).enrich(manifest, **options).canvases[0]

    return run


@pytest.fixture(scope="module")
def tiled(scan, enrich):
    document, _ = scan
    result = enrich(document)
    assert result.error is None
    return result.detections


def on(det: Detection, box) -> bool:
    """Whether most of DET lies on BOX."""
    x0, y0 = max(det.box[0], box[0]), max(det.box[1], box[1])
    x1, y1 = min(det.box[0] + det.box[2], box[0] + box[2]), min(det.box[1] + det.box[3], box[1] + box[3])
    return max(0, x1 - x0) * max(0, y1 - y0) >= 0.5 * det.box[2] * det.box[3]


@pytest.mark.parametrize("border", ["vertical", "horizontal", "corner"])
def test_an_object_across_a_border_is_published_once(scan, tiled, border):
    """Objects up to the overlap are whole in a tile: their box is the tile's, close to the truth. Larger
    ones (up to a tile) may be whole in none: the whole-image pass's looser box stands for them."""
    _, objects = scan
    wanted = {"vertical": (True, False), "horizontal": (False, True), "corner": (True, True)}[border]
    across = [(label, box) for label, *box in objects if max(box[2:]) <= TILE
              and (crosses(box[0], box[2], X_BORDERS), crosses(box[1], box[3], Y_BORDERS)) == wanted]
    assert any(max(box[2:]) <= OVERLAP for _, box in across), f"the scan has no object across a {border} border"
    for label, box in across:
        published = [d for d in tiled if on(d, box)]
        assert [d.label for d in published] == [label], (box, published)
        assert iou(published[0].box, box) >= (0.8 if max(box[2:]) <= OVERLAP else 0.5), (box, published)


def test_an_object_larger_than_a_tile_is_found_once(scan, tiled):
    _, objects = scan
    large = [(label, box) for label, *box in objects if max(box[2:]) > TILE]
    assert large, "the scan has no object larger than a tile"
    for label, box in large:
        published = [d for d in tiled if on(d, box)]
        assert [d.label for d in published] == [label] and iou(published[0].box, box) >= 0.5, (box, published)


def test_tiny_objects_are_found(scan, tiled):
    _, objects = scan
    tiny = [(label, box) for label, *box in objects if max(box[2:]) < 40]
    assert tiny, "the scan has no tiny object"
    for label, box in tiny:
        assert any(d.label == label and iou(d.box, box) >= 0.5 for d in tiled), box


def test_region_mode_with_tiling_keeps_every_box_inside_the_region(scan, enrich):
    document, objects = scan
    region = (700, 500, 1500, 1100)
    result = enrich(document, region=parse_region("xywh=%d,%d,%d,%d" % region))
    inside = [(label, box) for label, *box in objects if box[0] >= region[0] and box[1] >= region[1]
              and box[0] + box[2] <= region[0] + region[2] and box[1] + box[3] <= region[1] + region[3]]
    assert inside and all(any(d.label == label and iou(d.box, box) >= 0.5 for d in result.detections) for label, box in inside)
    for det in result.detections:
        x, y, w, h = det.box
        assert region[0] <= x and x + w <= region[0] + region[2] and region[1] <= y and y + h <= region[1] + region[3], det
