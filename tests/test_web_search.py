"""IIIF Content Search 1.0 and 2.0 through the running service: concepts found by their labels in every
language of the vocabulary, by URI and by a broader Iconclass notation; people's texts; what curators
rejected is not found; paging, motivation and ignored parameters; autocomplete; every answer checked
against the fields the specs require and read as JSON-LD with the IIIF contexts."""

from __future__ import annotations

import re

import pytest
from searchdata import seed_classes
from test_web_verdicts import post_verdict, verdict
from webclient import live_server

from enricher.contentsearch import (
    AUTOCOMPLETE1,
    SEARCH1,
    SEARCH1_CONTEXT,
    SEARCH2_CONTEXT,
)
from enricher.jsonld import to_graph

DOGS, BIRDS, TRAFFIC_LIGHTS = 3, 1, 1  # in searchdata.SCENES
LANGUAGES = {"en": "dog", "de": "Hund", "fr": "chien", "nl": "hond"}
ON = re.compile(r"^https?://\S+#xywh=\d+,\d+,\d+,\d+$")


@pytest.fixture
def server(tmp_path):
    with live_server(tmp_path) as server:
        server.key, server.manifest = seed_classes(server)
        yield server


def search(client, server, q: str, version: int = 1, **params) -> dict:
    response = client.get(f"{server.key}/search/{version}", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


def ids(answer: dict) -> list[str]:
    """The annotation ids a 1.0 or 2.0 answer lists."""
    return [r["@id"] for r in answer["resources"]] if "resources" in answer else [i["id"] for i in answer["items"]]


def total(answer: dict) -> int:
    return answer["within"]["total"] if "within" in answer else answer["partOf"]["total"]


def check_search1(answer: dict, conformance_dir) -> None:
    """The fields Content Search 1.0 requires (section 3.3), and that it reads as JSON-LD."""
    assert SEARCH1_CONTEXT in answer["@context"] and answer["@type"] == "sc:AnnotationList" and answer["@id"]
    assert answer["within"]["@type"] == "sc:Layer" and isinstance(answer["within"]["total"], int)
    for resource in answer["resources"]:
        assert resource["@type"] == "oa:Annotation" and resource["@id"] and ON.match(resource["on"]), resource
        assert resource["resource"]["chars"]
    listed = {r["@id"] for r in answer["resources"]}
    for hit in answer["hits"]:
        assert hit["@type"] == "search:Hit" and set(hit["annotations"]) <= listed and hit["match"], hit
    assert isinstance(answer["ignored"], list)
    assert len(to_graph(answer, conformance_dir)) > 0


def check_search2(answer: dict, conformance_dir) -> None:
    """The fields Content Search 2.0 requires (section 3.3), and that it reads as JSON-LD."""
    assert answer["@context"] == SEARCH2_CONTEXT and answer["type"] == "AnnotationPage" and answer["id"]
    assert answer["partOf"]["type"] == "AnnotationCollection" and isinstance(answer["partOf"]["total"], int)
    for item in answer["items"]:
        assert item["type"] == "Annotation" and item["id"] and item["motivation"] and item["target"], item
    listed = {i["id"] for i in answer["items"]}
    for page in answer["annotations"]:
        for hit in page["items"]:
            assert hit["motivation"] == "highlighting" and hit["target"]["source"] in listed, hit
            assert hit["target"]["selector"][0]["type"] == "TextQuoteSelector" and hit["target"]["selector"][0]["exact"]
    assert isinstance(answer["ignored"], list)
    assert len(to_graph(answer, conformance_dir)) > 0


@pytest.mark.parametrize("version", [1, 2])
def test_every_language_finds_the_same_boxes(client, server, version, conformance_dir):
    answers = {lang: search(client, server, q, version) for lang, q in LANGUAGES.items()}
    found = {lang: sorted(ids(answer)) for lang, answer in answers.items()}
    assert len(found["en"]) == DOGS and all(f == found["en"] for f in found.values()), found
    assert all(total(answer) == DOGS for answer in answers.values())
    # case and accents are ignored
    assert sorted(ids(search(client, server, "HÜND", version))) == found["en"]
    for answer in answers.values():
        (check_search1 if version == 1 else check_search2)(answer, conformance_dir)


def test_hits_show_the_label_in_the_querys_language_and_the_confidence(client, server):
    answer = search(client, server, "chien")
    assert {hit["match"] for hit in answer["hits"]} == {"chien"}
    assert all(re.fullmatch(r" \(\d+%\)", hit["after"]) for hit in answer["hits"])
    assert {r["resource"]["chars"] for r in answer["resources"]} == {"chien"}
    assert search(client, server, "Hund", 2)["annotations"][0]["items"][0]["target"]["selector"][0]["exact"] == "Hund"


@pytest.mark.parametrize("q", ["http://www.wikidata.org/entity/Q144", "https://iconclass.org/34B11",
                               "http://iconclass.org/34B11", "https://w3id.org/enricher/coco/dog"])
def test_a_concept_uri_finds_its_boxes(client, server, q):
    assert total(search(client, server, q)) == DOGS


@pytest.mark.parametrize("q", ["25F", "animals", "Tiere", "animaux", "Dieren"])
def test_a_broader_iconclass_concept_finds_what_is_under_it(client, server, q):
    answer = search(client, server, q)
    chars = {r["resource"]["chars"] for r in answer["resources"]}
    assert total(answer) == BIRDS and len(chars) == 1 and chars <= {"bird", "Vogel", "oiseau", "vogel"}, answer


def test_word_order_is_ignored(client, server):
    assert total(search(client, server, "light traffic")) == total(search(client, server, "Traffic Light")) == 1


def test_rejected_boxes_are_not_found_and_peoples_tags_are(client, server):
    dogs = ids(search(client, server, "dog"))
    assert post_verdict(client, server, verdict(client, dogs[0], "rejected")).status_code == 201
    answer = search(client, server, "Hund")
    assert total(answer) == DOGS - 1 and dogs[0] not in ids(answer)
    canvas = server.manifest.canvases[2].id
    tag = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "motivation": "tagging",
           "body": {"type": "TextualBody", "value": "Brass astrolabe", "purpose": "tagging"},
           "target": f"{canvas}#xywh=1,2,30,40"}
    posted = client.post(f"{server.key}/annotations/", tag)
    assert posted.status_code == 201, posted.text
    for q in ("astrolabe", "brass", "astrolabe BRASS"):
        assert ids(search(client, server, q)) == [posted.headers["Location"]], q
    assert ids(search(client, server, "astrolabe", motivation="commenting")) == []
    assert ids(search(client, server, "astrolabe", motivation="tagging")) == [posted.headers["Location"]]


def test_unsupported_parameters_are_listed_as_ignored(client, server):
    assert search(client, server, "dog", date="2026-01-01T00:00:00Z/2026-12-31T00:00:00Z")["ignored"] == ["date"]
    assert search(client, server, "dog", 2, user="alice", date="x")["ignored"] == ["date", "user"]
    assert client.get(f"{server.key}/search/1", params={"q": "dog", "page": "x"}).status_code == 400
    assert client.get("0123456789abcdef/search/1", params={"q": "dog"}).status_code == 404


@pytest.mark.parametrize("version", [1, 2])
def test_answers_page(tmp_path, version, conformance_dir):
    with live_server(tmp_path) as server:
        from webclient import Client

        key, _ = seed_classes(server, [{"dog": 60}, {"dog": 50}])
        with Client(server) as client:
            first = client.get(f"{key}/search/{version}", params={"q": "dog"}).json()
            assert total(first) == 110 and len(ids(first)) == 100
            following = first["next"] if version == 1 else first["next"]["id"]
            second = client.get(following).json()
            assert len(ids(second)) == 10 and not set(ids(first)) & set(ids(second))
            assert second["startIndex"] == 100 and "next" not in second
            (check_search1 if version == 1 else check_search2)(second, conformance_dir)


def test_autocomplete_offers_labels_in_every_language_with_counts(client, server):
    terms = client.get(f"{server.key}/autocomplete/1", params={"q": "Hu"}).json()
    assert terms["@type"] == "search:TermList" and terms["@context"] == SEARCH1_CONTEXT
    hund = next(t for t in terms["terms"] if t["match"] == "Hund")
    assert hund["count"] == DOGS and hund["label"] == {"@value": "Hund", "@language": "de"}
    assert total(client.get(hund["url"]).json()) == DOGS
    assert all(t["count"] > 0 and t["url"] for t in terms["terms"])
    # only what this manifest has: no zebras, whose German label starts with "Hu" too (Huftiere)
    assert not any(t["match"].startswith("Huftiere") for t in terms["terms"])

    page = client.get(f"{server.key}/autocomplete/2", params={"q": "chi"}).json()
    assert page["type"] == "TermPage" and page["@context"] == SEARCH2_CONTEXT
    dog = next(i for i in page["items"] if i["value"] == "http://www.wikidata.org/entity/Q144")
    assert dog["total"] == DOGS and dog["label"]["fr"] == ["chien"] and dog["label"]["de"] == ["Hund"]
    assert total(search(client, server, dog["value"], 2)) == DOGS


def test_the_manifest_advertises_both_versions(client, server, tmp_path):
    manifest = client.get(f"{server.key}/manifest.json").json()
    one = next(s for s in manifest["service"] if s.get("profile") == SEARCH1)
    assert one["@type"] == "SearchService1" and one["service"][0]["profile"] == AUTOCOMPLETE1
    two = next(s for s in manifest["service"] if s.get("type") == "SearchService2")
    assert two["service"][0]["type"] == "AutoCompleteService2"
    assert client.get(one["@id"], params={"q": "dog"}).status_code == 200
    assert client.get(two["service"][0]["id"], params={"q": "do"}).status_code == 200
