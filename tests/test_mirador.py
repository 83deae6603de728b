"""Mirador 3 and 4 (from npm, in Debian's headless chromium) show our annotations' labels and no error,
on the v3 and v2 enriched manifests the running service serves after a real job, and on hand-made ones.

Both versions fail with "TypeError: Cannot read properties of undefined (reading 'toString')" when a
body lacks a ``value`` (both list every body of a ``tagging`` annotation as a tag); the last test
proves the harness sees that failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser.mirador import (
    StaticSite,
    mirador_site,
    open_mirador,
    packages,
)
from conftest import unavailable
from factories import make_collection, make_manifest
from webclient import Client, live_server, run_job

from enricher.annotate import (
    Generator,
    annotation_list,
    annotation_page,
    build_annotation,
    enriched_manifest,
)
from enricher.config import load_config
from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS
from enricher.detect import Detection
from enricher.imageserver import serve_images
from enricher.manifest import parse_manifest
from enricher.vocab import Vocabulary

VERSIONS = sorted(packages())
SCENE = "scene-1"  # the sample canvas the service's job runs on
# Hand-made detections on the conftest "gradient" image (1000 x 700): two mapped classes, one unknown.
DETECTIONS = (Detection("dog", 0.91, (100, 100, 200, 150)), Detection("cup", 0.5, (600, 200, 80, 60)),
              Detection("astrolabe", 0.4, (700, 400, 100, 100)))
# A concept body as Mirador must not get it: a SpecificResource naming a Wikidata IRI, with no value.
VALUELESS = {"type": "SpecificResource", "source": "http://www.wikidata.org/entity/Q144", "purpose": "classifying"}

pytestmark = pytest.mark.parametrize("version", VERSIONS)


@pytest.fixture(scope="session")
def site(node_modules) -> Iterator[StaticSite]:
    """The loopback site serving the viewer page, Mirador, and the data each test mounts."""
    with mirador_site(node_modules) as site:
        yield site


@pytest.fixture(scope="session")
def served_manifests(site, tmp_path_factory) -> Iterator[dict[int, str]]:
    """Presentation version -> URL of the enriched manifest the running service serves after one real
    job: the demo weights on a sample scene, posted as a collection of a v3 and a v2 manifest of it."""
    if not DEMO_WEIGHTS.is_file() or not (DEMO_IMAGES / f"{SCENE}.jpg").is_file():
        unavailable(f"the demo weights ({DEMO_WEIGHTS}) or sample images ({DEMO_IMAGES}) are missing")
    folder = tmp_path_factory.mktemp("sources")
    base = site.mount("/sources", folder)
    settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu", "batch": 1}
    with (serve_images(DEMO_IMAGES) as images, live_server(tmp_path_factory.mktemp("service"), **settings) as server,
          Client(server) as client):
        members = []
        for version in (3, 2):
            url = f"{base}v{version}.json"
            document = make_manifest(version, [(SCENE, 1200, 900)], f"{images}/iiif/{version}", manifest_id=url)
            (folder / f"v{version}.json").write_text(json.dumps(document))
            members.append((url, "Manifest"))
        (folder / "collection.json").write_text(json.dumps(make_collection(3, members, f"{base}collection.json")))
        job = run_job(client, {"manifest": f"{base}collection.json"})
        assert job["state"] == "done" and not job["errors"], job
        served = {}
        for result in job["results"]:
            served[3 if "items" in client.get(result["manifest"]).json() else 2] = result["manifest"]
        assert sorted(served) == [2, 3], job
        yield served


def publish_handmade(site: StaticSite, name: str, folder: Path, image_base: str, *, version: int, broken: bool) -> str:
    """Publish a one-canvas Presentation VERSION manifest linked to a page and a list of DETECTIONS built
    by enricher.annotate (a value-less body added to each when BROKEN); return the manifest's URL."""
    base = site.mount(f"/{name}", folder)
    config = load_config({"base_url": base}, env={})
    document = make_manifest(version, [("gradient", 1000, 700)], image_base, manifest_id=f"{base}source.json")
    manifest = parse_manifest(document, f"{base}source.json")
    canvas = manifest.canvases[0]
    vocabulary = Vocabulary.load()
    generator = Generator("test", "hand-made", "0" * 64)
    annotations = [
        build_annotation(canvas=canvas, manifest=manifest, detection=d, mapping=vocabulary.lookup(d.label),
                         generator=generator, created="2024-01-01T00:00:00Z", config=config)
        for d in DETECTIONS
    ]
    urls = {"pages": f"{base}pages/0.json", "lists": f"{base}lists/0.json", "manifest": f"{base}manifest.json"}
    listed = annotation_list(canvas, annotations, urls["lists"])
    if broken:
        for annotation in annotations:
            annotation["body"].append(VALUELESS)
    documents = {
        "pages": annotation_page(canvas, annotations, urls["pages"]),
        "lists": listed,
        "manifest": enriched_manifest(manifest, {canvas.id: (urls["pages"], urls["lists"])}, urls["manifest"]),
    }
    for key, document in documents.items():
        path = folder / urls[key].removeprefix(base)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
    return urls["manifest"]


@pytest.fixture(scope="session")
def handmade(site, iiif_server, tmp_path_factory) -> dict[str, str]:
    """URLs of the hand-made manifests: "v3", "v2", and "broken" (v3 with value-less bodies)."""
    variants = {"v3": (3, False), "v2": (2, False), "broken": (3, True)}
    return {
        name: publish_handmade(
            site, name, tmp_path_factory.mktemp(name), f"{iiif_server}/iiif/{v}", version=v, broken=broken
        )
        for name, (v, broken) in variants.items()
    }


def first_canvas_annotations(manifest_url: str) -> tuple[int, list[str]]:
    """Read the first canvas's annotations as served (v3 pages or v2 lists): their number and every
    display text of their bodies."""
    with httpx.Client(timeout=10) as client:
        manifest = client.get(manifest_url).raise_for_status().json()
        if "items" in manifest:
            links = [page["id"] for page in manifest["items"][0].get("annotations", [])]
            items = [a for url in links for a in client.get(url).raise_for_status().json()["items"]]
            texts = [body.get("value") for a in items for body in a["body"]]
        else:
            links = [page["@id"] for page in manifest["sequences"][0]["canvases"][0].get("otherContent", [])]
            items = [a for url in links for a in client.get(url).raise_for_status().json()["resources"]]
            resources = [a["resource"] if isinstance(a["resource"], list) else [a["resource"]] for a in items]
            texts = [resource.get("chars") for group in resources for resource in group]
    return len(items), [text for text in texts if text]


@pytest.fixture
def screenshot(request, tmp_path) -> Iterator[Path]:
    """Where the test saves its screenshot; copied into $MIRADOR_SCREENSHOTS when that is set (not an
    ENRICHER_ name: enricher's settings loader rejects unknown ENRICHER_* variables)."""
    path = tmp_path / f"{request.node.name}.png"
    yield path
    keep = os.environ.get("MIRADOR_SCREENSHOTS")
    if keep and path.is_file():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def check(chromium, site, version: int, manifest_url: str, screenshot: Path) -> None:
    """Open MANIFEST_URL in Mirador VERSION and assert it lists every annotation and label, error-free."""
    count, labels = first_canvas_annotations(manifest_url)
    assert count and labels, f"{manifest_url}: no annotations on the first canvas to look for"
    view = open_mirador(chromium, site, version, manifest_url, labels=labels, screenshot=screenshot)
    assert not view.errors, view.summary()
    assert view.count() == count, view.summary()
    assert not view.missing(labels), f"missing {view.missing(labels)}; {view.summary()}"


@pytest.mark.parametrize("presentation", [3, 2], ids=["v3", "v2"])
def test_served_manifest_shows_its_labels(chromium, site, served_manifests, screenshot, version, presentation):
    check(chromium, site, version, served_manifests[presentation], screenshot)


def test_handmade_annotations_show_every_body(chromium, site, handmade, screenshot, version):
    assert any(label.startswith("Wikidata Q") for label in first_canvas_annotations(handmade["v3"])[1])
    check(chromium, site, version, handmade["v3"], screenshot)


def test_v2_annotation_list_shows_its_labels(chromium, site, handmade, screenshot, version):
    check(chromium, site, version, handmade["v2"], screenshot)


def test_valueless_body_is_caught(chromium, site, handmade, screenshot, version):
    labels = first_canvas_annotations(handmade["broken"])[1]
    view = open_mirador(chromium, site, version, handmade["broken"], labels=labels, screenshot=screenshot)
    assert any("reading 'toString'" in error for error in view.errors), view.summary()
