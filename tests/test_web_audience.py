"""Manifests for an audience over real HTTP: labels in the language ``lang`` or Accept-Language asks
for (English where the vocabulary has none), carried through the manifest's links; the verified-only
manifest and the three layers as AnnotationCollections labelled in every language (Cookbook 0309)."""

from __future__ import annotations

import pytest
from conformance import assert_iiif3
from searchdata import seed_classes
from test_web_verdicts import post_verdict, verdict
from webclient import live_server

from enricher.audience import LAYER_LABELS

FRENCH = {"dog": "chien", "bird": "oiseau", "horse": "cheval"}


@pytest.fixture
def server(tmp_path):
    with live_server(tmp_path) as server:
        server.key, server.manifest = seed_classes(server)
        yield server


def taggings(page: dict) -> list[tuple[str, str]]:
    """(value, language) of the tagging body of each annotation of a v3 page."""
    return [(b["value"], b["language"]) for a in page["items"] for b in a["body"] if b["purpose"] == "tagging"]


def test_lang_names_the_classes_in_that_language(client, server):
    english = client.get(f"{server.key}/pages/0.json").json()
    assert sorted(taggings(english)) == [("bird", "en"), ("dog", "en"), ("dog", "en"), ("horse", "en")]
    response = client.get(f"{server.key}/pages/0.json", params={"lang": "fr"})
    assert "Accept-Language" in response.headers["Vary"]
    french = response.json()
    assert sorted(taggings(french)) == sorted((FRENCH[v], "fr") for v, _ in taggings(english))
    values = [b["value"] for a in french["items"] for b in a["body"] if b["purpose"] == "classifying"]
    assert "Wikidata Q144: chien" in values and "Iconclass 34B11: chien" in values
    assert [a["id"] for a in french["items"]] == [a["id"] for a in english["items"]]
    # Accept-Language when no lang is given; English where the vocabulary has no label in a language
    german = client.get(f"{server.key}/pages/0.json", headers={"Accept-Language": "de-CH, fr;q=0.5"}).json()
    assert ("Hund", "de") in taggings(german)
    assert sorted(taggings(client.get(f"{server.key}/pages/0.json", params={"lang": "es"}).json())) == sorted(taggings(english))
    listing = client.get(f"{server.key}/lists/0.json", params={"lang": "nl"}).json()
    assert "hond" in [r["chars"] for a in listing["resources"] for r in a["resource"]]


def test_the_manifests_links_carry_the_language(client, server, conformance_dir):
    manifest = client.get(f"{server.key}/manifest.json", params={"lang": "fr"}).json()
    assert manifest["id"] == f"{server.url}{server.key}/manifest.json?lang=fr"
    pages = [canvas["annotations"][-1]["id"] for canvas in manifest["items"]]
    assert pages == [f"{server.url}{server.key}/pages/{n}.json?lang=fr" for n in range(3)]
    assert ("chien", "fr") in taggings(client.get(pages[0]).json())
    assert_iiif3(manifest, conformance_dir)


def test_the_verified_manifest_lists_only_verified_and_peoples_annotations(client, server, conformance_dir):
    first = [a["id"] for a in client.get(f"{server.key}/pages/0.json").json()["items"]]
    accepted, rejected, *pending = first
    assert post_verdict(client, server, verdict(client, accepted, "accepted")).status_code == 201
    assert post_verdict(client, server, verdict(client, rejected, "rejected")).status_code == 201
    tag = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "motivation": "tagging",
           "body": {"type": "TextualBody", "value": "astrolabe", "purpose": "tagging"},
           "target": f"{server.manifest.canvases[0].id}#xywh=500,500,40,40"}
    person = client.post(f"{server.key}/annotations/", tag).headers["Location"]

    manifest = client.get(f"{server.key}/verified/manifest.json").json()
    assert manifest["id"] == f"{server.url}{server.key}/verified/manifest.json"
    assert_iiif3(manifest, conformance_dir)
    links = [page["id"] for page in manifest["items"][0]["annotations"]]
    assert links == [f"{server.url}{server.key}/layers/{layer}/pages/0.json" for layer in ("verified", "people")]
    shown = {layer: client.get(url).json() for layer, url in zip(("verified", "people"), links)}
    assert [a["id"] for a in shown["verified"]["items"]] == [accepted]
    assert [a["id"] for a in shown["people"]["items"]] == [person]
    machine = client.get(f"{server.key}/layers/machine/pages/0.json").json()
    assert sorted(a["id"] for a in machine["items"]) == sorted(pending)
    for layer, page in {**shown, "machine": machine}.items():
        assert page["partOf"][0]["id"] == f"{server.url}{server.key}/layers/{layer}"
        assert_iiif3(page, conformance_dir)
    # the v2 lists of a layer say which layer they are within
    listing = client.get(f"{server.key}/layers/verified/lists/0.json").json()
    assert [a["@id"] for a in listing["resources"]] == [accepted]
    assert listing["within"]["@type"] == "sc:Layer"


@pytest.mark.parametrize("layer", sorted(LAYER_LABELS))
def test_each_layer_is_a_collection_labelled_in_every_language(client, server, layer):
    collection = client.get(f"{server.key}/layers/{layer}").json()
    assert collection["type"] == "AnnotationCollection"
    assert set(collection["label"]) == {"en", "de", "fr", "nl"} and all(collection["label"].values())
    assert collection["first"]["id"] == f"{server.url}{server.key}/layers/{layer}/pages/0.json"
    assert collection["last"]["id"] == f"{server.url}{server.key}/layers/{layer}/pages/2.json"
    assert client.get(f"{server.key}/layers/nothing").status_code == 404
