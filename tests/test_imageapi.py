"""Planning IIIF Image API requests within a server's level, fetching them from real servers (the
reference implementation and a static level-0 tree) and mapping pixels back (enricher.imageapi)."""

from __future__ import annotations

import json
import tempfile

import httpx
import numpy as np
import pytest
from conftest import TEST_IMAGES
from factories import make_manifest

from enricher.errors import ConfigError, ImageError, RegionError
from enricher.imageapi import (
    ImageInfo,
    ImagePart,
    ImageRequest,
    canvas_to_image,
    image_to_canvas,
    load_request,
    parse_info,
    plan_region,
    plan_tiles,
    plan_whole,
    read_info,
    to_image_box,
)
from enricher.imageserver import serve_images, service_url
from enricher.manifest import parse_manifest

ID = "http://img.example.org/iiif/x"
URL = ID + "/info.json"
WIDTH, HEIGHT, MARK = TEST_IMAGES["gradient"]


def info3(width=4000, height=3000, profile="level2", **extra) -> ImageInfo:
    document = {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": ID,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": profile,
        "width": width,
        "height": height,
        **extra,
    }
    return parse_info(document, URL)


def info2(width=4000, height=3000, level=2, limits=None, **extra) -> ImageInfo:
    profile = [f"http://iiif.io/api/image/2/level{level}.json", *([limits] if limits else [])]
    document = {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": ID,
        "protocol": "http://iiif.io/api/image",
        "profile": profile,
        "width": width,
        "height": height,
        **extra,
    }
    return parse_info(document, URL)


def size_param(request: ImageRequest) -> str:
    (part,) = request.parts
    return part.url.removeprefix(ID + "/").split("/")[1]


# -- info.json


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("level", [1, 2])
def test_reference_server_info(fetcher, iiif_server, version, level):
    service = service_url(iiif_server, "gradient", version, level)
    info = read_info(service, fetcher)
    assert (info.id, info.version, info.level, info.width, info.height) == (service, version, level, WIDTH, HEIGHT)
    assert info.free and info.url == service + "/info.json"
    assert ("sizeByWh" in info.features) == (version == 3 or level == 2)


@pytest.mark.parametrize("version", [2, 3])
def test_static_tree_info(fetcher, static_tree, version):
    info = read_info(static_tree.service("gradient", version), fetcher)
    assert (info.version, info.level, info.width, info.height, info.free) == (version, 0, WIDTH, HEIGHT, False)
    assert (250, 175) in info.sizes
    assert [(t.width, t.height, t.scale_factors) for t in info.tiles] == [(256, 256, (1, 2))]


def test_v2_limits_and_features_live_in_the_profile_object():
    info = info2(level=0, limits={"maxWidth": 800, "maxArea": 400000, "supports": ["regionByPx", "sizeByW"]})
    assert (info.max_width, info.max_height, info.max_area) == (800, 800, 400000)
    assert info.level == 0 and info.free


def test_v3_limits_sizes_tiles_and_extra_features():
    info = info3(
        profile="level0",
        maxWidth=1000,
        maxHeight=900,
        extraFeatures=["regionByPx", "sizeByWh"],
        sizes=[{"width": 500, "height": 375}, {"bad": 1}],
        tiles=[{"width": 512, "scaleFactors": [4, 1, 2]}],
    )
    assert (info.max_width, info.max_height, info.sizes) == (1000, 900, ((500, 375),))
    assert [(t.width, t.height, t.scale_factors) for t in info.tiles] == [(512, 512, (1, 2, 4))]
    assert info.free


@pytest.mark.parametrize(
    "document, message",
    [
        ({"@context": "http://library.stanford.edu/iiif/image-api/1.1/context.json", "profile": "x", "width": 1, "height": 1}, "not a IIIF Image API 2 or 3"),
        ({"@context": "http://iiif.io/api/image/1/context.json", "width": 1, "height": 1}, "not a IIIF Image API 2 or 3"),
        ({"@context": "http://iiif.io/api/image/3/context.json", "profile": "gold", "width": 1, "height": 1}, "no compliance level"),
        ({"@context": "http://iiif.io/api/image/3/context.json", "profile": "level1", "width": 10}, "no positive width and height"),
    ],
)
def test_unusable_info_names_the_url(document, message):
    with pytest.raises(ImageError, match=message) as caught:
        parse_info(document, URL)
    assert caught.value.where == URL


def test_info_id_variants():
    assert info3(**{"@id": ID + "/"}).id == ID
    document = {"@context": "http://iiif.io/api/image/3/context.json", "profile": "level1", "width": 5, "height": 5}
    assert parse_info(document, URL).id == ID


# -- planning within the level


def test_level2_scales_the_whole_image_to_the_long_side():
    request = plan_whole(info3(), 640)
    assert (request.region, request.size) == ((0, 0, 4000, 3000), (640, 480))
    assert request.parts[0].url == f"{ID}/full/640,480/0/default.jpg"


def test_regions_use_pixel_syntax():
    request = plan_region(info3(), (100, 200, 1000, 500), 500)
    assert request.parts[0].url == f"{ID}/100,200,1000,500/500,250/0/default.jpg"
    assert request.size == (500, 250)


@pytest.mark.parametrize("info, expected", [(info3(300, 200), "max"), (info2(300, 200), "full"), (info2(300, 200, level=1), "full")])
def test_never_upscales(info, expected):
    request = plan_whole(info, 640)
    assert request.size == (300, 200) and size_param(request) == expected


@pytest.mark.parametrize(
    "info, expected",
    [
        (info2(4000, 3000, level=2), "640,480"),
        (info2(4000, 3000, level=1), "640,"),
        (info2(3000, 4000, level=1), ",640"),
        (info3(3000, 4000, profile="level1"), "480,640"),
    ],
    ids=["v2-level2", "v2-level1-landscape", "v2-level1-portrait", "v3-level1"],
)
def test_size_syntax_per_version_and_level(info, expected):
    assert size_param(plan_whole(info, 640)) == expected


@pytest.mark.parametrize(
    "info",
    [
        info3(maxWidth=500),
        info3(3000, 4000, maxWidth=500),  # maxHeight defaults to maxWidth
        info3(maxArea=100_000),
        info2(limits={"maxWidth": 500}),
        info2(level=1, limits={"maxHeight": 300}),
    ],
    ids=["v3-maxWidth", "v3-maxWidth-portrait", "v3-maxArea", "v2-maxWidth", "v2-maxHeight"],
)
def test_maxima_are_honoured_in_every_plan(info):
    requests = [plan_whole(info, 2000), plan_region(info, (0, 0, 2000, 2000), 2000), *plan_tiles(info, (0, 0, 4000, 3000), 1024, 100)]
    for request in requests:
        for width, height in [request.size, *(part.size for part in request.parts)]:
            assert info.max_width is None or width <= info.max_width
            assert info.max_height is None or height <= info.max_height
            assert info.max_area is None or width * height <= info.max_area


LEVEL0 = info3(
    1000,
    700,
    profile="level0",
    sizes=[{"width": 250, "height": 175}, {"width": 500, "height": 350}],
    tiles=[{"width": 256, "scaleFactors": [1, 2, 4]}],
)


def level0_answers(info: ImageInfo) -> set[str]:
    """Every URL a level-0 server with INFO's sizes and tiles answers, enumerated from the spec."""
    answers = {f"{info.id}/full/{w},{h if info.version == 3 else ''}/0/default.jpg" for w, h in info.sizes}
    for tiles in info.tiles:
        for factor in tiles.scale_factors:
            step_x, step_y = tiles.width * factor, tiles.height * factor
            for y in range(0, info.height, step_y):
                for x in range(0, info.width, step_x):
                    w, h = min(step_x, info.width - x), min(step_y, info.height - y)
                    size = f"{-(-w // factor)},{-(-h // factor) if info.version == 3 else ''}"
                    answers.add(f"{info.id}/{x},{y},{w},{h}/{size}/0/default.jpg")
    return answers


@pytest.mark.parametrize("version", [2, 3])
def test_level0_asks_only_for_listed_sizes_and_tiles(version):
    info = LEVEL0 if version == 3 else info2(1000, 700, level=0, sizes=[{"width": 250, "height": 175}, {"width": 500, "height": 350}], tiles=[{"width": 256, "scaleFactors": [1, 2, 4]}])
    answers = level0_answers(info)
    requests = [
        plan_whole(info, 400),
        plan_whole(info, 800),
        plan_whole(info, 100),
        plan_region(info, (300, 300, 100, 100), 100),
        plan_region(info, (0, 0, 1000, 10), 2000),
        *plan_tiles(info, (0, 0, 1000, 700), 300, 60),
    ]
    for request in requests:
        assert {part.url for part in request.parts} <= answers
    assert plan_whole(info, 400).parts[0].url == f"{ID}/full/500,{350 if version == 3 else ''}/0/default.jpg"
    assert len(plan_whole(info, 800).parts) == 12  # the 4 x 3 grid at scale factor 1
    assert plan_region(info, (300, 300, 100, 100), 100).parts[0].region == (256, 256, 256, 256)


def test_level0_single_tile_scale_factors_are_not_requested():
    # at scale factor 4 one 1024 tile covers the whole image: servers answer that only as a listed size
    info = info3(1000, 700, profile="level0", tiles=[{"width": 256, "scaleFactors": [4]}])
    request = plan_whole(info, 200)
    assert [part.url for part in request.parts] == [f"{ID}/full/max/0/default.jpg"]


@pytest.mark.parametrize("info, size", [(info3(800, 600, profile="level0"), "max"), (info2(800, 600, level=0), "full")])
def test_level0_without_sizes_or_tiles_asks_for_the_whole_image(info, size):
    request = plan_region(info, (100, 100, 200, 100), 50)
    assert [part.url for part in request.parts] == [f"{ID}/full/{size}/0/default.jpg"]
    assert (request.region, request.size) == ((100, 100, 200, 100), (200, 100))


def test_level0_whole_image_within_maxwidth():
    request = plan_whole(info3(2000, 1000, profile="level0", maxWidth=500), 2000)
    assert request.parts[0].size == (500, 250) and request.size == (500, 250)


def test_plan_tiles_cover_the_region_with_overlap():
    info = info3(1000, 700)
    region = (100, 50, 800, 600)
    requests = plan_tiles(info, region, 400, 100)
    xs = sorted({r.region[0] for r in requests})
    ys = sorted({r.region[1] for r in requests})
    assert xs[0] == 100 and ys[0] == 50
    assert max(r.region[0] + r.region[2] for r in requests) == 900 and max(r.region[1] + r.region[3] for r in requests) == 650
    assert all(b - a <= 300 for a, b in zip(xs, xs[1:])) and all(b - a <= 300 for a, b in zip(ys, ys[1:]))
    assert all(r.region[2:] == (400, 400) and r.size == (400, 400) for r in requests)
    covered = np.zeros((700, 1000), bool)
    for x, y, w, h in (r.region for r in requests):
        covered[y : y + h, x : x + w] = True
    assert covered[50:650, 100:900].all()


def test_a_region_smaller_than_a_tile_is_one_tile():
    (request,) = plan_tiles(info3(1000, 700), (10, 20, 300, 200), 640, 128)
    assert (request.region, request.size) == ((10, 20, 300, 200), (300, 200))


@pytest.mark.parametrize("tile, overlap", [(0, 0), (640, 640), (640, -1)])
def test_bad_tiling_settings(tile, overlap):
    with pytest.raises(ConfigError):
        plan_tiles(info3(), (0, 0, 100, 100), tile, overlap)


def test_regions_are_clipped_to_the_image_and_outside_is_an_error():
    assert plan_region(info3(1000, 700), (900, 600, 500, 500), 100).region == (900, 600, 100, 100)
    with pytest.raises(RegionError, match="outside the image 1000x700") as caught:
        plan_region(info3(1000, 700), (1000, 0, 50, 50), 100)
    assert caught.value.where == ID


# -- fetching what was planned, from real servers


def assert_shows_gradient(image, request: ImageRequest, width: int, height: int, mark=None) -> None:
    """Check that pixels of IMAGE hold the gradient colour of the image position they map to."""
    pixels = np.asarray(image, dtype=float)
    for fy in (0.1, 0.5, 0.9):
        for fx in (0.1, 0.5, 0.9):
            x, y = int(fx * (image.width - 1)), int(fy * (image.height - 1))
            ix, iy, _, _ = to_image_box((x + 0.5, y + 0.5, 0, 0), request, image.size)
            if mark and mark[0] - 15 <= ix <= mark[0] + mark[2] + 15 and mark[1] - 15 <= iy <= mark[1] + mark[3] + 15:
                continue
            expected = (255 * ix / (width - 1), 255 * iy / (height - 1))
            assert abs(pixels[y, x, 0] - expected[0]) < 14 and abs(pixels[y, x, 1] - expected[1]) < 14, (x, y, ix, iy)


def plans(info: ImageInfo) -> list[ImageRequest]:
    region = (info.width * 11 // 20, info.height // 5, info.width // 5, info.height // 5)
    return [
        plan_whole(info, 640),
        plan_whole(info, 200),
        plan_region(info, region, 100),
        plan_region(info, region, 1000),
        *plan_tiles(info, (0, 0, info.width, info.height), 400, 80),
    ]


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("level", [1, 2])
def test_reference_server_answers_every_plan(fetcher, iiif_server, version, level):
    info = read_info(service_url(iiif_server, "gradient", version, level), fetcher)
    for request in plans(info):
        image = load_request(request, fetcher)
        assert image.size == request.size
        assert_shows_gradient(image, request, WIDTH, HEIGHT, MARK)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("identifier", ["gradient", "portrait"])
def test_static_tree_answers_every_plan(fetcher, static_tree, version, identifier):
    width, height, mark = TEST_IMAGES[identifier]
    info = read_info(static_tree.service(identifier, version), fetcher)
    for request in plans(info):
        assert all(static_tree.path(part.url).is_file() for part in request.parts)
        image = load_request(request, fetcher)
        assert image.size == request.size
        assert_shows_gradient(image, request, width, height, mark)


# -- mapping boxes back: result pixels -> image pixels -> canvas


def dark_box(image) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(np.asarray(image.convert("L")) < 40)
    return float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)


def close(box, expected, tolerance) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected))


@pytest.mark.parametrize("server", ["reference-v3-level2", "reference-v2-level1", "static-v3", "static-v2"])
def test_a_mark_found_in_a_region_maps_back_to_the_canvas(fetcher, iiif_server, static_tree, server):
    kind, version, *level = server.split("-")
    version = int(version[1])
    service = (
        service_url(iiif_server, "gradient", version, int(level[0][-1])) if kind == "reference" else static_tree.service("gradient", version)
    )
    document = make_manifest(version, [("gradient", WIDTH, HEIGHT)], service.rsplit("/", 1)[0], scale=2)
    (canvas,) = parse_manifest(document, "http://example.org/m.json").canvases
    canvas_size = (canvas.width, canvas.height)
    assert canvas_size == (2 * WIDTH, 2 * HEIGHT)
    info = read_info(canvas.service_id, fetcher)
    canvas_region = (1000, 300, 400, 300)  # around the mark, in canvas coordinates
    image_region = tuple(round(v) for v in canvas_to_image(canvas_region, (info.width, info.height), canvas_size))
    assert image_region == (500, 150, 200, 150)
    request = plan_region(info, image_region, 100)
    image = load_request(request, fetcher)
    found = image_to_canvas(to_image_box(dark_box(image), request, image.size), (info.width, info.height), canvas_size)
    expected = tuple(2 * v for v in MARK)
    # one result pixel spans image_region / image.width image pixels, twice that on the canvas
    assert close(found, expected, tolerance=2 * 2 * (image_region[2] / image.width) + 2), (found, expected)


@pytest.mark.parametrize("kind", ["reference", "static"])
def test_a_mark_found_in_a_tile_maps_back_to_the_image(fetcher, iiif_server, static_tree, kind):
    service = service_url(iiif_server, "gradient", 3, 2) if kind == "reference" else static_tree.service("gradient", 3)
    info = read_info(service, fetcher)
    found = []
    for request in plan_tiles(info, (0, 0, info.width, info.height), 300, 90):
        x, y, w, h = request.region
        if x <= MARK[0] and y <= MARK[1] and MARK[0] + MARK[2] <= x + w and MARK[1] + MARK[3] <= y + h:
            image = load_request(request, fetcher)
            found.append(to_image_box(dark_box(image), request, image.size))
    assert found and all(close(box, MARK, tolerance=2) for box in found), found


def test_to_image_box_uses_the_delivered_size():
    request = ImageRequest((100, 50, 400, 200), (200, 100), (ImagePart("u", (100, 50, 400, 200), (200, 100)),))
    assert to_image_box((40, 20, 80, 40), request, (200, 100)) == (180, 90, 160, 80)
    assert to_image_box((40, 20, 80, 40), request, (400, 200)) == (140, 70, 80, 40)


def test_image_and_canvas_coordinates():
    assert image_to_canvas((10, 20, 30, 40), (1000, 700), (2000, 1400)) == (20, 40, 60, 80)
    assert canvas_to_image((20, 40, 60, 80), (1000, 700), (2000, 1400)) == (10, 20, 30, 40)
    assert image_to_canvas((100, 100, 50, 50), (1000, 500), (500, 500)) == (50, 100, 25, 50)


# -- the image server itself


def test_service_urls_and_documents(image_dir, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"hello": "world"}))
    with serve_images(image_dir, documents=tmp_path) as base:
        assert service_url(base, "gradient") == f"{base}/iiif/3/gradient"
        assert service_url(base, "gradient", 2, 1) == f"{base}/iiif-level1/2/gradient"
        assert httpx.get(f"{base}/manifests/m.json").json() == {"hello": "world"}
        assert httpx.get(f"{base}/manifests/../{next(image_dir.iterdir()).name}").status_code == 404
        assert httpx.get(f"{base}/iiif/3/nothing/info.json").status_code == 404
    with pytest.raises(FileNotFoundError):
        with serve_images(tmp_path / "missing"):
            pass


def test_reference_server_leaves_no_temporary_files(fetcher, iiif_server, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the reference manipulator writes
    info = read_info(service_url(iiif_server, "gradient", 3), fetcher)
    images = [load_request(request, fetcher) for request in plans(info)]
    assert all(image.getbbox() for image in images)  # answers were complete, not cut short
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version, size", [(2, "256,"), (3, "256,256")])
def test_static_tree_files(static_tree, version, size):
    info = json.loads((static_tree.root / str(version) / "gradient" / "info.json").read_text())
    assert info.get("id", info.get("@id")) == static_tree.service("gradient", version)
    assert (static_tree.root / str(version) / "gradient" / "0,0,256,256" / size / "0" / "default.jpg").is_file()
