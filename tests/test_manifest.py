"""Reading IIIF Presentation 2.1/3.0 manifests and collections (enricher.manifest)."""

from __future__ import annotations

import copy
import json
import logging

import pytest
from conformance import assert_iiif3
from conftest import Reply
from factories import PRESENTATION, load_fixture, make_collection, make_manifest
from PIL import Image

from enricher.datafiles import DEMO_IMAGES, DEMO_MANIFESTS
from enricher.errors import FetchError, ManifestError
from enricher.manifest import parse_manifest, read_manifests

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
    assert (second.image_url, second.service_id, second.skip) == (None, None, "nothing is painted on it")


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
        (_without(V3, "items", 0, "id"), "canvas at /items/0 has no id", "/items/0"),
        (make_collection(3, [], "http://example.org/c.json"), "collection, not a manifest", None),
    ],
    ids=["canvas", "range", "no-iiif", "version-4", "foreign-context", "no-id", "collection"],
)
def test_unusable_documents_name_url_and_path(document, message, pointer):
    with pytest.raises(ManifestError, match=message) as caught:
        parse_manifest(document, URL)
    assert caught.value.where == URL and URL in str(caught.value)
    assert caught.value.pointer == pointer


@pytest.mark.parametrize(
    "document, index, size",
    [
        (_without(V3, "items", 1, "width"), 1, (360, 900)),
        (_without(_without(V2, "sequences", 0, "canvases", 0, "height"), "sequences", 0, "canvases", 0, "width"), 0, (1000, 700)),
        ({**V2, "sequences": [{"canvases": [{**V2["sequences"][0]["canvases"][0], "width": 0, "height": 0}]}]}, 0, (1000, 700)),
        (_without(_without(V3, "items", 0, "width"), "items", 0, "items", 0, "items", 0, "body", "width"), 0, (None, None)),
    ],
    ids=["v3-no-width", "v2-no-size", "v2-zero-size", "v3-neither-sized"],
)
def test_a_canvas_without_a_size_takes_its_images(document, index, size):
    """Refused whole before; the size comes from the painted image (else from its info.json, when enriched)."""
    canvas = parse_manifest(document, URL).canvases[index]
    assert (canvas.width, canvas.height) == size
    assert canvas.error is None and canvas.skip is None and canvas.service_id == SERVICE.replace("/a", "/" + "ab"[index])


def test_canvases_with_nothing_to_look_at_are_skipped_with_the_reason():
    canvases = parse_manifest(load_fixture("mixed-canvases.json"), URL).canvases
    skipped = {c.label: c.skip for c in canvases if c.skip}
    assert skipped == {
        "sound only, with a duration and no size (IIIF Cookbook 0002)": "nothing to look at: it paints Sound",
        "video with a placeholder image (IIIF Cookbook 0013)": "nothing to look at: it paints Video",
        "a transcription painted as text": "nothing to look at: it paints TextualBody",
        "f. 1v, image missing (IIIF Cookbook 0283)": "nothing is painted on it",
    }
    sound = next(c for c in canvases if "sound" in c.label)
    assert (sound.width, sound.height, sound.images, sound.error) == (None, None, (), None)
    v2 = parse_manifest(load_fixture("mixed-canvases-v2.json"), URL).canvases
    assert [c.skip for c in v2] == [None, None, "nothing is painted on it", None]
    placeholder_only = {**V3, "items": [{"id": "c", "type": "Canvas", "placeholderCanvas": V3["items"][0]}]}
    assert parse_manifest(placeholder_only, URL).canvases[0].skip == "nothing is painted on it (only a placeholder canvas)"


def _painting(document: dict, index: int = 0) -> dict:
    return document["items"][index]["items"][0]["items"][0]


def _changed(version: int, change) -> dict:
    document = copy.deepcopy(V3 if version == 3 else V2)
    change(document)
    return document


@pytest.mark.parametrize(
    "document, message, pointer",
    [
        (_changed(3, lambda d: _painting(d, 1).pop("body")), "its painting annotation has no body", "/items/1/items/0/items/0"),
        (_changed(3, lambda d: _painting(d, 1).update(body="http://img.example.org/b.jpg")),
         "the painted body is a JSON str, not an object", "/items/1/items/0/items/0/body"),
        (_changed(3, lambda d: _painting(d, 1).update(body=[None])), "is a JSON NoneType", "/items/1/items/0/items/0/body/0"),
        (_changed(3, lambda d: _painting(d, 1).update(motivation="commenting")),
         "none of its 1 annotations has the motivation painting", "/items/1/items"),
        (_changed(3, lambda d: _painting(d, 1)["body"].pop("id") and _painting(d, 1)["body"].pop("service")),
         "the painted image has no id and no image service", "/items/1/items/0/items/0/body"),
        (_changed(3, lambda d: _painting(d, 1).update(body={"type": "Choice", "items": []})), "a Choice without items", "/items/1/items/0/items/0/body"),
        (_changed(3, lambda d: _painting(d, 1).update(body={"type": "SpecificResource", "source": _painting(d, 1)["body"],
                                                            "selector": {"type": "SvgSelector", "value": "<svg/>"}})),
         "no selector of the image can be applied (types: SvgSelector", "/items/1/items/0/items/0/body/selector"),
        (_changed(3, lambda d: _painting(d, 1).update(body={"type": "SpecificResource", "source": _painting(d, 1)["body"],
                                                            "selector": {"type": "ImageApiSelector", "rotation": "45"}})),
         "rotation '45' is not a multiple of 90", "/items/1/items/0/items/0/body/selector"),
        (_changed(3, lambda d: _painting(d, 1).update(target=_painting(d, 1)["target"] + "#xywh=0,0,0,10")),
         "target 'xywh=0,0,0,10' is not xywh=x,y,w,h with an area", "/items/1/items/0/items/0/target"),
        (_changed(2, lambda d: d["sequences"][0]["canvases"][1]["images"][0].pop("resource")),
         "its image annotation has no resource", "/sequences/0/canvases/1/images/0"),
        (_changed(2, lambda d: d["sequences"][0]["canvases"][1]["images"].append("an image")),
         "an image annotation that is not an object", "/sequences/0/canvases/1/images/1"),
    ],
    ids=["no-body", "body-string", "body-null", "no-painting", "no-id", "empty-choice", "svg-selector", "rotation-45",
         "empty-target", "v2-no-resource", "v2-annotation-string"],
)
def test_a_canvas_whose_image_cannot_be_found_carries_its_error(document, message, pointer):
    """Made the whole run end in a TypeError before: now only that canvas fails, naming itself."""
    first, second = parse_manifest(document, URL).canvases
    assert first.error is None and first.images
    assert isinstance(second.error, ManifestError) and not second.images
    assert message in second.error.detail and second.id in str(second.error) and URL in str(second.error)
    assert second.error.pointer == pointer


def test_painting_bodies_selectors_choices_and_targets():
    base = "http://images.test"
    (crop,) = parse_manifest(load_fixture("image-api-selector.json"), URL).canvases[0].images
    assert (crop.service_id, crop.crop.unit, crop.crop.box, crop.rotation, crop.target) == (
        f"{base}/iiif/3/scene-1", "pixel", (400, 200, 800, 600), 0, None)
    (turned,) = parse_manifest(load_fixture("rotated.json"), URL).canvases[0].images
    assert (turned.crop, turned.rotation, turned.mirror, turned.shown_size()) == (None, 90, True, (1200, 900))
    (fragment,) = parse_manifest(load_fixture("fragment-selector-v2.json"), URL).canvases[0].images
    assert (fragment.url, fragment.service_id, fragment.crop.box) == (f"{base}/iiif/3/scene-2/full/max/0/default.jpg", None, (300, 100, 900, 800))
    (chosen,) = parse_manifest(load_fixture("choice.json"), URL).canvases[0].images
    assert chosen.service_id == f"{base}/iiif/3/scene-3"
    composed = parse_manifest(load_fixture("composition.json"), URL).canvases[0]
    assert [(i.service_id.rsplit("/", 1)[1], i.target.box) for i in composed.images] == [
        ("scene-1", (0, 0, 1200, 900)), ("scene-3", (1200, 150, 450, 600))]
    assert composed.service_id.endswith("scene-1")  # the first image stands for the canvas on the review page


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_document_nested_too_deep_is_refused_in_one_line(stub, fetcher, config):
    deep = "[" * 10_000 + "]" * 10_000
    manifest = stub.json("/deep.json", f'{{"@context": "{PRESENTATION[3]}", "type": "Manifest", "id": "m", "items": {deep}}}')
    collection = stub.json("/deep-collection.json", f'{{"@context": "{PRESENTATION[3]}", "type": "Collection", "items": {deep}}}')
    for url in (manifest, collection):
        with pytest.raises(ManifestError, match="nested too deeply") as caught:
            list(read_manifests(url, fetcher, config))
        assert caught.value.where == url
    # deep enough to break a copy or a dump later, shallow enough to decode: refused up front
    document = make_manifest(3, IMAGES, "http://img.example.org/iiif")
    document["metadata"] = _nested(500)
    with pytest.raises(ManifestError, match="more than 100 levels deep"):
        parse_manifest(document, URL)
    document["metadata"], document["label"] = [], _nested(90)
    assert parse_manifest(document, URL).label == ""  # a label nested 90 deep reads without recursion


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
