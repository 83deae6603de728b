"""IIIF endpoints over real HTTP: the enriched manifest (v3 and v2.1), per canvas a Presentation 3
AnnotationPage and a 2.1 AnnotationList built from the store, every body with a display value."""

from __future__ import annotations

import pytest
from conformance import assert_iiif3, assert_w3c_annotation
from factories import make_manifest
from webclient import live_server, seed

IIIF3 = 'application/ld+json; profile="http://iiif.io/api/presentation/3/context.json"'
IIIF2 = 'application/ld+json; profile="http://iiif.io/api/presentation/2/context.json"'
IMAGES = "https://images.example.org/iiif"
PER_CANVAS = (3, 0, 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-iiif")) as server:
        canvases = [("a", 1000, 800), ("b", 1000, 800), ("c", 600, 400)]
        server.v3 = seed(server, make_manifest(3, canvases, IMAGES), PER_CANVAS)
        server.v2 = seed(server, make_manifest(2, canvases, IMAGES), PER_CANVAS, label="cat")
        yield server


def assert_displayable(annotation: dict) -> None:
    """Mirador 3 and 4 fail on a body without a display value."""
    bodies = annotation["body"] if isinstance(annotation["body"], list) else [annotation["body"]]
    assert bodies and all(isinstance(b.get("value"), str) and b["value"] for b in bodies), annotation["id"]


def test_enriched_v3_manifest_links_a_page_per_canvas(client, server, conformance_dir):
    key, manifest = server.v3
    response = client.get(f"{key}/manifest.json", headers={"Origin": "https://viewer.example"})
    assert response.status_code == 200 and response.headers["Content-Type"] == IIIF3
    assert response.headers["ETag"] and response.headers["Access-Control-Allow-Origin"] == "*"
    document = response.json()
    assert document["id"] == f"{server.url}{key}/manifest.json"
    assert {"id": manifest.id, "type": "Manifest"}.items() <= document["seeAlso"][-1].items()
    pages = [canvas["annotations"][-1] for canvas in document["items"]]
    assert pages == [{"id": f"{server.url}{key}/pages/{n}.json", "type": "AnnotationPage"} for n in range(3)]
    assert_iiif3(document, conformance_dir)


def test_pages_hold_each_canvas_annotations(client, server, conformance_dir):
    key, manifest = server.v3
    sizes = {c.id: (c.width, c.height) for c in manifest.canvases}
    for index, count in enumerate(PER_CANVAS):
        response = client.get(f"{key}/pages/{index}.json")
        assert response.status_code == 200 and response.headers["Content-Type"] == IIIF3
        page = response.json()
        assert page["id"] == f"{server.url}{key}/pages/{index}.json" and page["type"] == "AnnotationPage"
        assert len(page["items"]) == count
        for annotation in page["items"]:
            assert annotation["target"]["source"]["id"] == manifest.canvases[index].id
            assert_displayable(annotation)
            assert_w3c_annotation({"@context": page["@context"], **annotation}, conformance_dir)
        assert_iiif3(page, conformance_dir, sizes)


def test_enriched_v2_manifest_links_a_list_per_canvas(client, server):
    key, manifest = server.v2
    response = client.get(f"{key}/manifest.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == IIIF2
    document = response.json()
    assert document["@id"] == f"{server.url}{key}/manifest.json"
    lists = [canvas["otherContent"][-1]["@id"] for canvas in document["sequences"][0]["canvases"]]
    assert lists == [f"{server.url}{key}/lists/{n}.json" for n in range(3)]


def test_lists_hold_each_canvas_annotations(client, server):
    key, manifest = server.v2
    for index, count in enumerate(PER_CANVAS):
        response = client.get(f"{key}/lists/{index}.json")
        assert response.status_code == 200 and response.headers["Content-Type"] == IIIF2
        listing = response.json()
        assert listing["@type"] == "sc:AnnotationList" and len(listing["resources"]) == count
        for annotation in listing["resources"]:
            assert annotation["on"].startswith(manifest.canvases[index].id + "#xywh=")
            assert annotation["resource"][0]["chars"] == "cat"


def post_note(client, key: str, canvas) -> str:
    """A person's comment on CANVAS (no language, no confidence); return its id."""
    posted = client.post(
        f"{key}/annotations/",
        {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "motivation": "commenting",
         "bodyValue": "a second dog, behind", "target": f"{canvas.id}#xywh=1,2,3,4"},
    )
    assert posted.status_code == 201
    return posted.json()["id"]


def test_a_persons_annotation_shows_on_its_canvas_page(client, server):
    key, manifest = server.v3
    posted = post_note(client, key, manifest.canvases[1])
    page = client.get(f"{key}/pages/1.json").json()
    assert [a["id"] for a in page["items"]] == [posted]
    assert_displayable(page["items"][0])


def test_a_persons_annotation_shows_on_its_canvas_list(client, server):
    key, manifest = server.v2
    posted = post_note(client, key, manifest.canvases[1])
    listing = client.get(f"{key}/lists/1.json").json()
    assert [a["@id"] for a in listing["resources"]] == [posted]


def test_pages_follow_the_store(client, server):
    key, manifest = server.v3
    before = client.get(f"{key}/pages/2.json")
    victim = before.json()["items"][0]["id"]
    assert client.delete(victim).status_code == 204
    after = client.get(f"{key}/pages/2.json")
    assert victim not in [a["id"] for a in after.json()["items"]]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert client.get(f"{key}/pages/2.json", headers={"If-None-Match": after.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("path", ["{key}/pages/3.json", "{key}/lists/3.json", "0123456789abcdef/manifest.json",
                                  "0123456789abcdef/pages/0.json", "{key}/pages/x.json"])
def test_missing_iiif_resources_are_problems(client, server, path):
    response = client.get(path.format(key=server.v3[0]))
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"


def test_the_service_description_links_everything(client, server):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    description = response.json()
    assert description["links"]["openapi"] == server.url + "openapi.json"
    assert description["links"]["annotations"] == server.url + "annotations/"
    listed = {m["key"]: m for m in description["manifests"]}
    for key, manifest in (server.v3, server.v2):
        assert listed[key]["manifest"] == f"{server.url}{key}/manifest.json"
        assert listed[key]["annotations"] == f"{server.url}{key}/annotations/"
        assert listed[key]["source"] == manifest.url
        assert client.get(listed[key]["manifest"]).status_code == 200
