"""Mirador 3 and 4 (from npm, in Debian's headless chromium) show our annotations' labels and no error.

Both versions fail with "TypeError: Cannot read properties of undefined (reading 'toString')" when a
body lacks a ``value``; the last test proves the harness sees that failure.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from click.testing import CliRunner

from browser.mirador import MiradorView, StaticSite, install, launch, mirador_site, open_mirador, packages
from enricher.annotate import Generator, annotation_page, build_annotation, enriched_manifest
from enricher.cli import DEMO_IMAGES, main
from enricher.config import DEMO_WEIGHTS, load_config
from enricher.detect import Detection
from enricher.imageserver import serve_images
from enricher.manifest import parse_manifest
from enricher.vocab import Vocabulary
from factories import make_manifest

VERSIONS = sorted(packages())
SCENE = "scene-1"  # the sample canvas the pipeline runs on
# Hand-made detections on the conftest "gradient" image (1000 x 700): two mapped classes, one unknown.
DETECTIONS = (Detection("dog", 0.91, (100, 100, 200, 150)), Detection("cup", 0.5, (600, 200, 80, 60)),
              Detection("astrolabe", 0.4, (700, 400, 100, 100)))
# A concept body as Mirador must not get it: a SpecificResource naming a Wikidata IRI, with no value.
VALUELESS = {"type": "SpecificResource", "source": "http://www.wikidata.org/entity/Q144", "purpose": "classifying"}

pytestmark = pytest.mark.parametrize("version", VERSIONS)


def unavailable(message: str) -> None:
    """Fail under CI, where the browser test must run; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """Chromium and Mirador 3 and 4, installed once by tests/browser/setup.sh."""
    if not shutil.which("npm"):
        unavailable("npm is not installed: the Mirador test installs Mirador 3 and 4 with it")
    try:
        return install()
    except RuntimeError as exc:
        unavailable(f"cannot install chromium and Mirador: {exc}")


@pytest.fixture(scope="session")
def site(node_modules) -> Iterator[StaticSite]:
    """The loopback site serving the viewer page, Mirador, and the data each test mounts."""
    with mirador_site(node_modules) as site:
        yield site


@pytest.fixture(scope="session")
def browser(node_modules):
    """Debian's chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def mirador_manifest_url(site, tmp_path_factory) -> Iterator[str]:
    """The enriched manifest under test: the CLI's output for a sample scene, served by ``site``.

    Swap this fixture's body to test the running service instead.
    """
    if not DEMO_WEIGHTS.is_file() or not (DEMO_IMAGES / f"{SCENE}.jpg").is_file():
        unavailable(f"the demo weights ({DEMO_WEIGHTS}) or sample images ({DEMO_IMAGES}) are missing")
    folder = tmp_path_factory.mktemp("enriched")
    base = site.mount("/enriched", folder)
    with serve_images(DEMO_IMAGES) as images:
        source = folder / "source.json"
        source.write_text(json.dumps(make_manifest(3, [(SCENE, 1200, 900)], f"{images}/iiif/3")))
        args = ["enrich", str(source), "--out", str(folder), "--base-url", base, "--weights", str(DEMO_WEIGHTS)]
        result = CliRunner().invoke(main, [*args, "--allow-private"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (enriched,) = folder.glob("*/manifest.json")
        yield base + enriched.relative_to(folder).as_posix()


def publish_handmade(site: StaticSite, folder: Path, image_base: str, broken: bool) -> str:
    """Publish a one-canvas manifest whose page holds DETECTIONS built by enricher.annotate (with a
    value-less body added to each when BROKEN); return the manifest's URL."""
    name = "broken" if broken else "handmade"
    base = site.mount(f"/{name}", folder)
    config = load_config({"base_url": base}, env={})
    document = make_manifest(3, [("gradient", 1000, 700)], image_base, manifest_id=f"{base}source.json")
    manifest = parse_manifest(document, document["id"])
    canvas = manifest.canvases[0]
    vocabulary = Vocabulary.load()
    generator = Generator("test", "hand-made", "0" * 64)
    annotations = [
        build_annotation(canvas=canvas, manifest=manifest, detection=d, mapping=vocabulary.lookup(d.label),
                         generator=generator, created="2024-01-01T00:00:00Z", config=config)
        for d in DETECTIONS
    ]
    if broken:
        for annotation in annotations:
            annotation["body"].append(VALUELESS)
    page_url, manifest_url = f"{base}pages/0.json", f"{base}manifest.json"
    (folder / "pages").mkdir()
    (folder / "pages" / "0.json").write_text(json.dumps(annotation_page(canvas, annotations, page_url)))
    enriched = enriched_manifest(manifest, {canvas.id: (page_url, f"{base}lists/0.json")}, manifest_url)
    (folder / "manifest.json").write_text(json.dumps(enriched))
    return manifest_url


@pytest.fixture(scope="session")
def handmade(site, iiif_server, tmp_path_factory) -> dict[bool, str]:
    """URLs of the hand-made manifest: broken (value-less bodies) -> URL."""
    return {
        broken: publish_handmade(site, tmp_path_factory.mktemp("handmade"), f"{iiif_server}/iiif/3", broken)
        for broken in (False, True)
    }


def first_canvas_labels(manifest_url: str) -> list[str]:
    """Read every body value of the first canvas's AnnotationPages, as served."""
    with httpx.Client(timeout=10) as client:
        manifest = client.get(manifest_url).raise_for_status().json()
        pages = [client.get(page["id"]).raise_for_status().json() for page in manifest["items"][0]["annotations"]]
    return [body["value"] for page in pages for item in page["items"] for body in item["body"] if "value" in body]


@pytest.fixture
def screenshot(request, tmp_path) -> Iterator[Path]:
    """Where the test saves its screenshot; copied into $ENRICHER_SCREENSHOTS when that is set."""
    path = tmp_path / f"{request.node.name}.png"
    yield path
    keep = os.environ.get("ENRICHER_SCREENSHOTS")
    if keep and path.is_file():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def assert_shows(view: MiradorView, labels: list[str]) -> None:
    assert labels, "the manifest has no annotation labels to look for"
    assert not view.errors, view.summary()
    assert not view.missing(labels), f"missing {view.missing(labels)}; {view.summary()}"


def test_enriched_manifest_shows_its_labels(browser, site, mirador_manifest_url, screenshot, version):
    labels = first_canvas_labels(mirador_manifest_url)
    assert_shows(open_mirador(browser, site, version, mirador_manifest_url, labels, screenshot), labels)


def test_handmade_annotations_show_every_body(browser, site, handmade, screenshot, version):
    labels = first_canvas_labels(handmade[False])
    assert any(label.startswith("Wikidata Q") for label in labels), labels  # concept bodies are listed too
    assert_shows(open_mirador(browser, site, version, handmade[False], labels, screenshot), labels)


def test_valueless_body_is_caught(browser, site, handmade, screenshot, version):
    labels = first_canvas_labels(handmade[True])
    view = open_mirador(browser, site, version, handmade[True], labels, screenshot)
    assert any("reading 'toString'" in error for error in view.errors), view.summary()
