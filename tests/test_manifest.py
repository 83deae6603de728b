"""Reading IIIF Presentation 2.1/3.0 manifests and collections (enricher.manifest)."""

from __future__ import annotations

import copy
import json
import logging

import pytest
from PIL import Image

from conformance import assert_iiif3
from conftest import Reply
from enricher.datafiles import DEMO_IMAGES, DEMO_MANIFESTS
from enricher.errors import FetchError, ManifestError
from enricher.manifest import parse_manifest, read_manifests
from factories import PRESENTATION, make_collection, make_manifest

SAMPLES = DEMO_MANIFESTS
SAMPLE_IMAGES = DEMO_IMAGES
DEMO_BASE = "http://127.0.0.1:8182"
URL = "http://example.org/manifest.json"
IMAGES = [("a", 1000, 700), ("b", 360, 900)]


@pytest.mark.parametrize("version", [2, 3])
def test_canvases_dimensions_images_and_services(version):
    document = make_manifest(version, IMAGES, "http://img.example.org/iiif", scale=2, label="Two pictures")
    manifest = parse_manifest(document, URL)
    assert (manifest.version, manifest.label, manifest.url) == (version, "Two pictures", URL)
    assert manifest.id == document["id" if version == 3 else "@id"]
    assert manifest.document is document
    first, second = manifest.canvases
    assert (first.index, first.label, first.width, first.height) == (0, "a", 2000, 1400)
    assert (first.image_width, first.image_height) == (1000, 700)
    assert (first.service_id, first.service_version) == ("http://img.example.org/iiif/a", version)
    assert first.image_url.startswith("http://img.example.org/iiif/a/full/")
    assert (second.index, second.width, second.height, second.service_id) == (1, 720, 1800, "http://img.example.org/iiif/b")
    assert first.id != second.id


def test_factory_manifests_are_valid_presentation_3(conformance_dir):
    assert_iiif3(make_manifest(3, IMAGES, "http://img.example.org/iiif"), conformance_dir)
    collection = make_collection(3, [("http://example.org/m1.json", "Manifest")], "http://example.org/c.json")
    assert_iiif3(collection, conformance_dir)


SERVICE = "http://img.example.org/iiif/a"


@pytest.mark.parametrize(
    "service, expected",
    [
        ([{"id": SERVICE, "type": "ImageService3", "profile": "level0"}], (SERVICE, 3)),
        ([{"@id": SERVICE, "@type": "ImageService2", "profile": "http://iiif.io/api/image/2/level1.json"}], (SERVICE, 2)),
        ({"id": SERVICE + "/info.json", "profile": "level1"}, (SERVICE, 3)),
        ([{"@id": SERVICE + "/", "profile": "http://iiif.io/api/image/2/level2"}], (SERVICE, 2)),
        ([{"@context": "http://iiif.io/api/image/2/context.json", "@id": SERVICE, "profile": ["http://iiif.io/api/image/2/level2.json", {"maxWidth": 500}]}], (SERVICE, 2)),
        ([{"id": "http://auth.example.org/login", "type": "AuthCookieService1"}, {"id": SERVICE, "type": "ImageService3"}], (SERVICE, 3)),
        ([{"@id": SERVICE, "profile": "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level1"}], (None, None)),
        (None, (None, None)),
    ],
    ids=["v3", "v2-in-v3", "dict-info-json", "profile-uri-no-json", "v2-profile-list", "skips-auth", "image-api-1", "none"],
)
def test_image_service_variants(service, expected):
    document = make_manifest(3, IMAGES[:1], "http://img.example.org/iiif", service=False)
    body = document["items"][0]["items"][0]["items"][0]["body"]
    if service is not None:
        body["service"] = service
    canvas = parse_manifest(document, URL).canvases[0]
    assert (canvas.service_id, canvas.service_version) == expected
    assert canvas.image_url == body["id"]  # the plain image stays as the fallback


def test_v2_service_list_and_choice():
    document = make_manifest(2, IMAGES[:1], "http://img.example.org/iiif")
    annotation = document["sequences"][0]["canvases"][0]["images"][0]
    image = annotation["resource"]
    image["service"] = [image["service"]]
    annotation["resource"] = {"@type": "oa:Choice", "default": image, "item": [{"@id": "http://other/x.jpg"}]}
    canvas = parse_manifest(document, URL).canvases[0]
    assert (canvas.service_id, canvas.service_version, canvas.image_url) == (SERVICE, 2, image["@id"])


def test_v3_choice_body_and_canvas_without_image():
    document = make_manifest(3, IMAGES, "http://img.example.org/iiif")
    annotation = document["items"][0]["items"][0]["items"][0]
    annotation["body"] = {"type": "Choice", "items": [annotation["body"]]}
    document["items"][1]["items"] = []
    first, second = parse_manifest(document, URL).canvases
    assert first.service_id == SERVICE
    assert (second.image_url, second.service_id) == (None, None)


@pytest.mark.parametrize(
    "version, label, expected",
    [
        (2, [{"@value": "Titel", "@language": "de"}, {"@value": "Title", "@language": "en"}], "Title"),
        (2, [{"@value": "Titel", "@language": "de"}, {"@value": "Titre", "@language": "fr"}], "Titel"),
        (2, ["First", "Second"], "First"),
        (2, {"@value": "Title"}, "Title"),
        (3, {"de": ["Titel"], "en": ["Title"]}, "Title"),
        (3, {"none": ["MS 1"]}, "MS 1"),
        (3, {"fr": ["Titre", "Autre"]}, "Titre"),
    ],
)
def test_labels_flatten_to_text(version, label, expected):
    document = make_manifest(version, IMAGES[:1], "http://img.example.org/iiif")
    document["label"] = label
    assert parse_manifest(document, URL).label == expected


def test_v2_dimensions_written_as_strings():
    document = make_manifest(2, IMAGES[:1], "http://img.example.org/iiif")
    document["sequences"][0]["canvases"][0].update(width="2000", height="1400")
    assert parse_manifest(document, URL).canvases[0].width == 2000


def _without(document: dict, *path) -> dict:
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return document


V3 = make_manifest(3, IMAGES, "http://img.example.org/iiif")
V2 = make_manifest(2, IMAGES, "http://img.example.org/iiif")


@pytest.mark.parametrize(
    "document, message, pointer",
    [
        ({**V3, "type": "Canvas"}, "not a IIIF manifest or collection: type is 'Canvas'", "/type"),
        ({**V2, "@type": "sc:Range"}, "@type is 'sc:Range'", "/@type"),
        ({"title": "a web page"}, "no @context and no IIIF type", None),
        ({**V3, "@context": "http://iiif.io/api/presentation/4/context.json"}, "unsupported IIIF Presentation version 4", "/@context"),
        ({**V3, "@context": "https://schema.org"}, "unknown IIIF version", "/@context"),
        (_without(V3, "items", 1, "width"), "canvas http://img.example.org/iiif/manifest-v3/canvas/1 at /items/1 has no positive width", "/items/1"),
        (_without(V2, "sequences", 0, "canvases", 0, "height"), "at /sequences/0/canvases/0 has no positive width and height", "/sequences/0/canvases/0"),
        (_without(V3, "items", 0, "id"), "canvas at /items/0 has no id", "/items/0"),
        (make_collection(3, [], "http://example.org/c.json"), "collection, not a manifest", None),
    ],
    ids=["canvas", "range", "no-iiif", "version-4", "foreign-context", "no-width", "v2-no-height", "no-id", "collection"],
)
def test_unusable_documents_name_url_and_path(document, message, pointer):
    with pytest.raises(ManifestError, match=message) as caught:
        parse_manifest(document, URL)
    assert caught.value.where == URL and URL in str(caught.value)
    assert caught.value.pointer == pointer


def test_embedded_v3_manifest_without_context_is_read_as_its_collection(stub, fetcher, config):
    manifest = make_manifest(3, IMAGES, "http://img.example.org/iiif")
    collection = make_collection(3, [], stub.url("/c.json"))
    collection["items"] = [{k: v for k, v in manifest.items() if k != "@context"}]
    stub.json("/c.json", json.dumps(collection))
    manifests = list(read_manifests(stub.url("/c.json"), fetcher, config))
    assert [m.id for m in manifests] == [manifest["id"]]


def _serve_manifest(stub, name: str, version: int) -> str:
    url = stub.url(f"/{name}.json")
    stub.json(f"/{name}.json", json.dumps(make_manifest(version, IMAGES, "http://img.example.org/iiif", manifest_id=url, label=name)))
    return url


def _serve_collection(stub, name: str, version: int, members) -> str:
    url = stub.url(f"/{name}.json")
    stub.json(f"/{name}.json", json.dumps(make_collection(version, members, url, label=name)))
    return url


def test_a_manifest_url_yields_that_manifest(stub, fetcher, config):
    url = _serve_manifest(stub, "single", 3)
    (manifest,) = read_manifests(url, fetcher, config)
    assert (manifest.url, manifest.label, len(manifest.canvases)) == (url, "single", 2)


def test_v3_collection_of_v3_and_v2_manifests(stub, fetcher, config):
    m3, m2 = _serve_manifest(stub, "m3", 3), _serve_manifest(stub, "m2", 2)
    top = _serve_collection(stub, "top", 3, [(m3, "Manifest"), (m2, "Manifest")])
    manifests = list(read_manifests(top, fetcher, config))
    assert [(m.url, m.version) for m in manifests] == [(m3, 3), (m2, 2)]


def test_v2_collection_with_manifests_nested_and_embedded_collections(stub, fetcher, config):
    m1, m2, m3 = (_serve_manifest(stub, name, 2) for name in ("m1", "m2", "m3"))
    nested = _serve_collection(stub, "nested", 2, [(m2, "Manifest")])
    embedded = make_collection(2, [(m3, "Manifest")], stub.url("/embedded-not-served.json"))
    top = make_collection(2, [(m1, "Manifest"), (nested, "Collection")], stub.url("/top.json"))
    top["collections"].append({k: v for k, v in embedded.items() if k != "@context"})
    stub.json("/top.json", json.dumps(top))
    assert [m.url for m in read_manifests(stub.url("/top.json"), fetcher, config)] == [m1, m2, m3]
    assert stub.hits["/embedded-not-served.json"] == 0


def test_v2_collection_members(stub, fetcher, config):
    m1, m2 = _serve_manifest(stub, "m1", 2), _serve_manifest(stub, "m2", 2)
    nested = _serve_collection(stub, "nested", 2, [(m2, "Manifest")])
    top = {"@context": PRESENTATION[2], "@id": stub.url("/top.json"), "@type": "sc:Collection", "label": "top",
           "members": [{"@id": nested, "@type": "sc:Collection"}, {"@id": m1, "@type": "sc:Manifest"}]}
    stub.json("/top.json", json.dumps(top))
    assert [m.url for m in read_manifests(stub.url("/top.json"), fetcher, config)] == [m2, m1]


@pytest.mark.parametrize("max_depth, expected", [(1, ["m0"]), (2, ["m0", "m1"]), (3, ["m0", "m1", "m2"])])
def test_max_depth_stops_nested_collections_with_a_warning(stub, fetcher, config, caplog, max_depth, expected):
    m0, m1, m2 = (_serve_manifest(stub, name, 3) for name in ("m0", "m1", "m2"))
    inner = _serve_collection(stub, "inner", 3, [(m2, "Manifest")])
    middle = _serve_collection(stub, "middle", 3, [(m1, "Manifest"), (inner, "Collection")])
    top = _serve_collection(stub, "top", 3, [(m0, "Manifest"), (middle, "Collection")])
    with caplog.at_level(logging.WARNING, logger="enricher.manifest"):
        labels = [m.label for m in read_manifests(top, fetcher, config(max_depth=max_depth))]
    assert labels == expected
    assert ("max_depth" in caplog.text) == (max_depth < 3)


def test_max_manifests_stops_with_a_warning(stub, fetcher, config, caplog):
    urls = [_serve_manifest(stub, f"m{i}", 3) for i in range(3)]
    top = _serve_collection(stub, "top", 3, [(u, "Manifest") for u in urls])
    with caplog.at_level(logging.WARNING, logger="enricher.manifest"):
        manifests = list(read_manifests(top, fetcher, config(max_manifests=2)))
    assert [m.url for m in manifests] == urls[:2]
    assert "max_manifests=2" in caplog.text and urls[2] in caplog.text


def test_cycles_end(stub, fetcher, config, caplog):
    m0, m1 = _serve_manifest(stub, "m0", 3), _serve_manifest(stub, "m1", 3)
    a, b = stub.url("/a.json"), stub.url("/b.json")
    stub.json("/a.json", json.dumps(make_collection(3, [(m0, "Manifest"), (b, "Collection")], a)))
    stub.json("/b.json", json.dumps(make_collection(3, [(m1, "Manifest"), (a, "Collection")], b)))
    with caplog.at_level(logging.WARNING, logger="enricher.manifest"):
        manifests = list(read_manifests(a, fetcher, config(max_depth=50)))
    assert [m.url for m in manifests] == [m0, m1]
    assert "already read" in caplog.text
    assert stub.hits["/a.json"] == 1


def test_a_broken_member_is_skipped_with_a_warning_naming_it(stub, fetcher, config, caplog):
    missing, broken = stub.url("/missing.json"), stub.json("/broken.json", '{"@context": "x"}')
    good = _serve_manifest(stub, "good", 2)
    top = _serve_collection(stub, "top", 3, [(missing, "Manifest"), (broken, "Manifest"), (good, "Manifest")])
    with caplog.at_level(logging.WARNING, logger="enricher.manifest"):
        manifests = list(read_manifests(top, fetcher, config))
    assert [m.url for m in manifests] == [good]
    assert f"skipping {missing}: HTTP 404" in caplog.text and f"skipping {broken}: unknown IIIF version" in caplog.text


def test_errors_in_the_source_itself_raise(stub, fetcher, config):
    with pytest.raises(FetchError, match="HTTP 404"):
        list(read_manifests(stub.url("/nothing.json"), fetcher, config))
    stub.route("/page.html", Reply(200, b"<html></html>", {"Content-Type": "text/html"}))
    with pytest.raises(ManifestError, match=r"not JSON \(got text/html\)"):
        list(read_manifests(stub.url("/page.html"), fetcher, config))


def test_local_collection_file_with_remote_members(stub, fetcher, config, tmp_path):
    m3 = _serve_manifest(stub, "m3", 3)
    path = tmp_path / "collection.json"
    path.write_text(json.dumps(make_collection(3, [(m3, "Manifest")], "http://example.org/c.json")))
    assert [m.url for m in read_manifests(str(path), fetcher, config)] == [m3]


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def test_sample_manifests_are_valid_presentation_3(conformance_dir):
    assert_iiif3(_sample("demo-v3.json"), conformance_dir)
    assert_iiif3(_sample("collection.json"), conformance_dir)


def test_sample_manifests_point_at_the_demo_server():
    collection = _sample("collection.json")
    manifests = [parse_manifest(_sample(name), f"{DEMO_BASE}/manifests/{name}") for name in ("demo-v3.json", "demo-v2.json")]
    assert [item["id"] for item in collection["items"]] == [m.id for m in manifests]
    assert [m.version for m in manifests] == [3, 2]
    canvases = [c for m in manifests for c in m.canvases]
    assert all(c.service_id == f"{DEMO_BASE}/iiif/{c.service_version}/{c.label}" for c in canvases)
    assert {c.label for c in canvases} == {"scene-1", "scene-2", "scene-3", "scene-4", "large"}
    doubled = [c for c in canvases if (c.width, c.height) == (2 * c.image_width, 2 * c.image_height)]
    assert [c.label for c in doubled] == ["scene-2"]
    assert len({c.id for c in canvases}) == len(canvases)


def test_sample_manifests_match_the_sample_images():
    if not SAMPLE_IMAGES.is_dir():
        pytest.skip(f"the sample images are not there yet: {SAMPLE_IMAGES}")
    for name in ("demo-v3.json", "demo-v2.json"):
        for canvas in parse_manifest(_sample(name), name).canvases:
            with Image.open(SAMPLE_IMAGES / f"{canvas.label}.jpg") as image:
                assert image.size == (canvas.image_width, canvas.image_height), canvas.label
