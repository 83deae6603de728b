"""Property tests of every reader of outside input, with Hypothesis: the manifest and collection reader
(Presentation 2 and 3), the info.json reader and the request planner, region, xywh and selector parsing.
The property: each returns a value or raises an EnricherError whose message is one line, never another
exception. The HTTP bodies (annotations, verdicts, SPARQL forms) are fuzzed in test_fuzz_http.py.

In-suite sizes are small and fixed (tests/fuzzing.py); benchmarks/fuzz_long.py runs the long campaign."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from fuzzing import (
    COLLECTION,
    FRAGMENT_TEXT,
    INFO,
    JSON,
    KEYS,
    MANIFEST,
    REGION_TEXT,
    deep,
    fuzz_settings,
    returns_or_refuses,
)
from hypothesis import example, given
from hypothesis import strategies as st

from enricher.errors import EnricherError
from enricher.fetch import Fetcher
from enricher.geometry import parse_fragment, parse_region, parse_xywh
from enricher.imageapi import MAX_GRID_PARTS, ImageInfo, parse_info, plan_region
from enricher.manifest import Manifest, parse_manifest, read_manifests
from enricher.painting import read_fragment
from enricher.placement import place

URL = "https://192.0.2.1/iiif/manifest.json"
LONG_SIDE = 640


def _placed(manifest: Manifest, info: ImageInfo) -> None:
    """Place each image of each canvas as the pipeline does and plan its crop on INFO."""
    for canvas in manifest.canvases:
        for image in canvas.images:
            size = (canvas.width, canvas.height) if canvas.width and canvas.height else None
            placement = returns_or_refuses(place, image, (info.width, info.height), size, canvas.id)
            if isinstance(placement, EnricherError):
                continue
            pixels = tuple(round(v) for v in placement.to_image(placement.target))
            plan = returns_or_refuses(plan_region, info, pixels, LONG_SIDE)
            assert isinstance(plan, EnricherError) or len(plan.parts) <= MAX_GRID_PARTS


@fuzz_settings(120)
@given(document=st.one_of(MANIFEST, st.dictionaries(KEYS, JSON, max_size=6)))
@example(document={"type": ["Manifest"]})
@example(document={"@context": "http://iiif.io/api/presentation/3/context.json", "type": ["Manifest"], "id": "x"})
@example(document={"type": "Manifest", "id": "x", "label": [{"@language": ["en"], "@value": "a"}]})
@example(document={"type": "Manifest", "items": [{"id": "c", "width": 1e400, "height": 10}]})
@example(document={"type": "Manifest", "items": [{"id": "c", "items": [{"items": [
    {"motivation": "painting", "body": {"id": "i", "width": 10, "height": 10, "type": "SpecificResource", "source": "i",
                                        "selector": {"type": "ImageApiSelector", "region": "0,0," + "9" * 400 + ",5"}}}]}]}]})
@example(document={"type": "Manifest", "items": deep(200)})
def test_the_manifest_reader_returns_a_manifest_or_one_line_error(document):
    manifest = returns_or_refuses(parse_manifest, document, URL)
    if isinstance(manifest, Manifest):
        for canvas in manifest.canvases:
            assert canvas.width is None or canvas.width > 0
            assert canvas.error is None or "\n" not in str(canvas.error)
            for image in canvas.images:
                assert image.shown_size() is None or min(image.shown_size()) >= 0
        info = ImageInfo("https://192.0.2.1/iiif/a", 3, 2, 1000, 800, features=frozenset({"regionByPx", "sizeByWh"}))
        _placed(manifest, info)


@pytest.fixture(scope="module")
def reader(config):
    """A Fetcher that refuses every private address (the members' URLs are such, so none is fetched)
    and a folder for the documents it reads."""
    with Fetcher(config(allow_private=False)) as fetcher, tempfile.TemporaryDirectory() as folder:
        yield fetcher, Path(folder), config(allow_private=False, max_depth=3, max_manifests=20)


@fuzz_settings(60)
@given(document=st.one_of(COLLECTION, MANIFEST, JSON), raw=st.one_of(st.none(), st.binary(max_size=40)))
@example(document={"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Collection", "id": "c",
                   "items": [{"id": "m", "type": ["Manifest"], "items": []}]}, raw=None)
@example(document=None, raw=b"[" * 100_000)
@example(document=None, raw=b"1e400")
def test_the_collection_reader_yields_manifests_or_one_line_error(reader, document, raw):
    fetcher, folder, config = reader
    path = folder / "document.json"
    path.write_bytes(raw if raw is not None else json.dumps(document).encode())
    manifests = returns_or_refuses(lambda: list(read_manifests(str(path), fetcher, config)))
    assert isinstance(manifests, (list, EnricherError))
    assert isinstance(manifests, EnricherError) or len(manifests) <= config.max_manifests


@fuzz_settings(120)
@given(document=st.one_of(INFO, st.dictionaries(KEYS, JSON, max_size=6)),
       region=st.tuples(*[st.integers(-10, 5000)] * 4), long_side=st.integers(1, 4000))
@example(document={"@context": "http://iiif.io/api/image/3/context.json", "profile": "level2", "width": 1e400, "height": 5},
         region=(0, 0, 10, 10), long_side=10)
@example(document={"@context": "http://iiif.io/api/image/2/context.json", "profile": "http://iiif.io/api/image/2/level0.json",
                   "width": 10**9, "height": 10**9, "tiles": [{"width": 1, "scaleFactors": [1]}]},
         region=(0, 0, 200, 100), long_side=4000)
def test_the_info_reader_and_planner_return_a_plan_or_one_line_error(document, region, long_side):
    info = returns_or_refuses(parse_info, document, "https://192.0.2.1/iiif/a/info.json")
    if isinstance(info, ImageInfo):
        assert info.width > 0 and info.height > 0 and info.version in (2, 3)
        plan = returns_or_refuses(plan_region, info, region, long_side)
        assert isinstance(plan, EnricherError) or len(plan.parts) <= MAX_GRID_PARTS


@fuzz_settings(200)
@given(text=st.one_of(FRAGMENT_TEXT, REGION_TEXT, st.text(max_size=40)))
@example(text="xywh=" + "9" * 400 + ",0,1,1")
@example(text="1,1,1,1\n")
def test_region_and_fragment_parsers_return_a_box_or_one_line_error(text):
    for parse in (parse_xywh, parse_fragment, read_fragment):
        returns_or_refuses(parse, text)
    box = returns_or_refuses(parse_region, text)
    assert isinstance(box, EnricherError) or (box[2] > 0 and box[3] > 0)
