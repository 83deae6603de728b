"""IIIF Content Search in real viewers, in Debian's headless chromium, on an enriched manifest served by
the running service: Mirador 3 and 4 offer their search panel, autocomplete "Hund" after "Hu", list as
many hits as the API's total, each with the label, and move to a hit's canvas when it is chosen; a box
curators rejected is not among them. The Universal Viewer 4 finds the same hits through its search box.
A manifest asked for in French shows French labels in Mirador."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser.mirador import StaticSite, install, mirador_site, open_mirador, packages
from browser.search import search_mirador, search_uv
from conftest import unavailable
from factories import gradient_image
from searchdata import seed_classes
from test_web_verdicts import verdict
from webclient import Client, live_server

from enricher.imageserver import serve_images

# two dogs on the first canvas (one of them rejected below), one on the second
SCENES = ({"dog": 2, "bird": 1}, {"dog": 1, "horse": 1}, {"cat": 1})


@dataclass(frozen=True)
class Served:
    manifest: str  # the enriched manifest's URL
    canvases: list[str]
    total: int  # the API's total for "Hund"
    found: list[str]  # the annotation ids the API finds for "Hund"
    rejected: str


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """The running service with SCENES on a v3 manifest whose images the IIIF reference server serves,
    one dog rejected by a curator through the API."""
    images = tmp_path_factory.mktemp("scenes")
    for n in range(len(SCENES)):
        gradient_image(1000, 800, None).save(images / f"scene{n}.jpg")
    with serve_images(images) as image_server, live_server(tmp_path_factory.mktemp("service")) as server, \
            Client(server) as client:
        key, manifest = seed_classes(server, SCENES, image_base=f"{image_server}/iiif/3")
        dogs = [r["@id"] for r in client.get(f"{key}/search/1", params={"q": "dog"}).json()["resources"]]
        assert client.post(f"{key}/verdicts/", verdict(client, dogs[0], "rejected")).status_code == 201
        answer = client.get(f"{key}/search/1", params={"q": "Hund"}).json()
        yield Served(f"{server.url}{key}/manifest.json", [c.id for c in manifest.canvases], answer["within"]["total"],
                     [r["@id"] for r in answer["resources"]], dogs[0])


@pytest.fixture(scope="module")
def site(node_modules) -> Iterator[StaticSite]:
    """The loopback site of the viewer page and Mirador 3 and 4, with the Universal Viewer at /uv/."""
    try:
        uv = install("uv") / "universalviewer" / "dist"
    except RuntimeError as exc:
        unavailable(f"cannot install the Universal Viewer: {exc}")
    with mirador_site(node_modules) as site:
        site.mount("/uv", uv)
        yield site


@pytest.fixture
def screenshot(request, tmp_path) -> Path:
    return tmp_path / f"{request.node.name}.png"


@pytest.mark.parametrize("version", sorted(packages()))
def test_mirador_searches_our_concepts(chromium, site, served, screenshot, version):
    assert served.total == 2 and served.rejected not in served.found  # the API's side
    seen = search_mirador(chromium, site, version, served.manifest, prefix="Hu", query="Hund", choose="scene1",
                          screenshot=screenshot)
    assert not seen.errors, seen.summary()
    assert "Hund" in seen.suggestions, seen.summary()
    assert seen.hits == served.total and f"1 of {served.total}" in seen.panel, seen.summary()
    assert seen.panel.count("Hund (") == served.total, seen.summary()
    assert sorted(seen.resources) == sorted(served.found) and served.rejected not in seen.resources
    assert seen.canvas == served.canvases[1], seen.summary()


def test_universal_viewer_finds_the_same_hits(chromium, site, served, screenshot):
    seen = search_uv(chromium, site, served.manifest, query="Hund", screenshot=screenshot)
    assert not seen.errors, seen.summary()
    assert seen.hits == served.total, seen.summary()


@pytest.mark.parametrize("version", sorted(packages()))
def test_a_french_manifest_shows_french_labels(chromium, site, served, screenshot, version):
    french = ["chien", "oiseau", "Wikidata Q144: chien", "Iconclass 25F3: oiseau"]
    view = open_mirador(chromium, site, version, f"{served.manifest}?lang=fr", labels=french, screenshot=screenshot)
    assert not view.errors and not view.missing(french), view.summary()
    assert "dog" not in view.panel and "bird" not in view.panel, view.summary()
