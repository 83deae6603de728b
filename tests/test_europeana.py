"""The Europeana Annotations API profile, field by field against the API's scenarios (a semantic tag:
motivation tagging, the body a vocabulary URI; a tag with a language: a TextualBody of at most 64
characters; the target an item, scoped to one image by its source), over HTTP and from
``enricher export --format europeana``: only what the threshold and the curators allow, nothing
guessed for objects without a Europeana item, tags over 64 characters left out and counted."""

from __future__ import annotations

import json

import pytest
from aggregated import GENERATOR, enrich, judge, tag
from click.testing import CliRunner
from factories import make_manifest
from webclient import live_server

from enricher import __version__
from enricher.cli import main
from enricher.vocab import Vocabulary

IMAGES = "https://images.example.org/iiif"
ITEM = "http://data.europeana.eu/item/2048128/m1"
ALLOWED = {"type", "motivation", "body", "target", "via", "creator", "generator", "created"}
LONG = "a small brown dog with a red collar sitting on a chair next to an old clock"  # 75 characters


def uris(name: str) -> set[str]:
    """The concepts class NAME matches exactly or closely."""
    return {c.uri for c in Vocabulary.load().classes[name].concepts if c.match in ("exact", "close")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("europeana")
    rules = folder / "aggregation.json"
    rules.write_text(json.dumps({"objects": [
        {"manifest": r"^https://example\.org/(?P<id>m1)\.json$", "europeana": "http://data.europeana.eu/item/2048128/{id}"},
    ]}))
    with live_server(folder, aggregation_file=str(rules), aggregation_threshold=0.5) as server:
        with server.store() as store:
            m1 = make_manifest(3, [("a", 800, 600), ("b", 800, 600)], IMAGES, manifest_id="https://example.org/m1.json")
            key, manifest, made = enrich(store, m1, [
                (0, "dog", 0.9, (0, 0, 50, 50)),      # pending, above the threshold
                (0, "horse", 0.3, (100, 0, 50, 50)),  # pending, below
                (1, "cup", 0.9, (0, 0, 50, 50)),      # rejected
                (1, "bird", 0.2, (100, 0, 50, 50)),   # accepted
            ], server.config)
            named = {a["body"][0]["value"]: a for a in made}
            judge(store, key, named["cup"]["id"], "rejected")
            judge(store, key, named["bird"]["id"], "accepted")
            canvas = manifest.canvases[1].id
            people = [tag(f"{server.url}{key}/annotations/p{n}", canvas, text, language)
                      for n, (text, language) in enumerate([("Hund", "de"), ("a spotted thing", "en"), (LONG, "en")])]
            for document in people:
                store.create(key, document, "curator")
            m2 = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/m2.json")
            other = enrich(store, m2, [(0, "dog", 0.9, (0, 0, 50, 50)), (0, "cup", 0.8, (60, 0, 50, 50))], server.config)[0]
            m3 = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/m3.json")
            m3["homepage"] = [{"id": "https://www.europeana.eu/en/item/123/abc", "type": "Text", "label": {"en": ["m3"]}}]
            linked = enrich(store, m3, [(0, "clock", 0.99, (0, 0, 50, 50))], server.config)[0]
        server.keys = {"m1": key, "m2": other, "m3": linked}
        server.named, server.people, server.manifest = named, people, manifest
        yield server


def test_every_annotation_has_a_scenario_shape(client, server):
    page = client.get(f"{server.keys['m1']}/europeana.jsonld").json()
    assert page["@context"] == "http://www.w3.org/ns/anno.jsonld" and page["type"] == "AnnotationPage"
    assert page["id"] == f"{server.url}{server.keys['m1']}/europeana.jsonld"
    images = {c.id: c.image_url for c in server.manifest.canvases}
    with server.store() as store:
        for item in page["items"]:
            assert set(item) <= ALLOWED and item["type"] == "Annotation" and item["motivation"] == "tagging"
            annotation = store.get(item["via"])
            assert annotation is not None and not annotation.deleted and annotation.review_state != "rejected"
            assert item["target"] == {"scope": ITEM, "source": images[annotation.canvas_id]}
            assert item["created"] == annotation.document["created"]
            assert item["generator"] == {"type": "Software", "name": f"enricher {__version__}", "homepage": server.url}
            body = item["body"]
            if isinstance(body, str):
                assert body.startswith(("https://iconclass.org/", "http://www.wikidata.org/entity/"))
            else:
                assert set(body) == {"type", "value", "language"} and body["type"] == "TextualBody"
                assert len(body["value"]) <= 64 and body["language"]
            if annotation.model_sha256:
                assert item["creator"] == {"type": "Software", "name": GENERATOR.agent()["name"]}
            else:
                assert item["creator"] == {"type": "Person", "name": "curator"}


def test_only_what_the_threshold_and_the_curators_allow(client, server):
    page = client.get(f"{server.keys['m1']}/europeana.jsonld").json()
    sent = {(item["via"], item["body"] if isinstance(item["body"], str) else item["body"]["value"]) for item in page["items"]}
    named, people = server.named, server.people
    expected = {(named["dog"]["id"], uri) for uri in uris("dog")} | {(named["bird"]["id"], uri) for uri in uris("bird")}
    expected |= {(people[0]["id"], uri) for uri in uris("dog")}  # "Hund" is the dog class: its concepts
    expected |= {(people[1]["id"], "a spotted thing")}  # free text: a tag with its language
    assert sent == expected
    languages = {item["body"]["value"]: item["body"]["language"] for item in page["items"] if isinstance(item["body"], dict)}
    assert languages == {"a spotted thing": "en"}
    absent = {named["horse"]["id"], named["cup"]["id"], people[2]["id"]}  # below, rejected, too long
    assert not absent & {via for via, _ in sent}
    assert page["leftOut"] == {"noEuropeanaItem": 0, "tagTooLong": 1}


def test_objects_without_a_europeana_item_are_left_out_and_counted(client, server):
    page = client.get(f"{server.keys['m2']}/europeana.jsonld").json()
    assert page["items"] == [] and page["leftOut"] == {"noEuropeanaItem": 2, "tagTooLong": 0}
    linked = client.get(f"{server.keys['m3']}/europeana.jsonld").json()  # the item from the manifest's homepage
    assert {item["target"]["scope"] for item in linked["items"]} == {"http://data.europeana.eu/item/123/abc"}
    assert client.get("0000000000000000/europeana.jsonld").status_code == 404


def test_the_export_writes_the_same_profile_and_counts(client, server, tmp_path):
    env = {"ENRICHER_DATABASE": server.config.database, "ENRICHER_BASE_URL": server.url,
           "ENRICHER_AGGREGATION_FILE": server.config.aggregation_file}
    result = CliRunner().invoke(main, ["export", "--format", "europeana", "--out", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert f"{server.keys['m2']}: 0 annotations, left out: 2 noEuropeanaItem" in result.output
    assert f"{server.keys['m1']}: 7 annotations, left out: 1 tagTooLong" in result.output
    for key in server.keys.values():
        written = json.loads((tmp_path / key / "europeana.jsonld").read_text())
        assert written == client.get(f"{key}/europeana.jsonld").json()
    missing = CliRunner().invoke(main, ["export", "--format", "europeana", "--out", str(tmp_path), "ffffffffffffffff"],
                                 env=env)
    assert missing.exit_code == 1 and "no manifest ffffffffffffffff" in missing.output
