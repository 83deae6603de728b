"""Curators' verdicts over real HTTP: POST with and without a token, 409 on a stale version, bad
verdicts, the verdict containers, the public page losing rejected and replaced annotations, Change
Discovery announcing the page, SPARQL seeing reviewState and the verdicts, retraction."""

from __future__ import annotations

import pytest
from conformance import assert_w3c_annotation
from factories import make_manifest
from webclient import WRITER, live_server, seed

from enricher.review import state_iri

PER_CANVAS = (3, 1)
NO_TOKEN = {"Authorization": ""}


@pytest.fixture
def server(tmp_path):
    with live_server(tmp_path) as server:
        document = make_manifest(3, [("a", 1000, 800), ("b", 1000, 800)], "https://images.example.org/iiif")
        server.key, server.manifest = seed(server, document, PER_CANVAS)
        yield server


def machine_ids(client, server, index: int = 0) -> list[str]:
    page = client.get(f"{server.key}/pages/{index}.json").json()
    return [item["id"] for item in page["items"]]


def verdict(client, target_id: str, name: str, reasons=()) -> dict:
    """A verdict on the current version of TARGET_ID, as the review page builds it."""
    target = client.get(target_id).json()
    body = [{"type": "TextualBody", "value": name, "purpose": "assessing", "subject": state_iri(name)}]
    body += [{"type": "TextualBody", "value": r, "purpose": "commenting", "subject": state_iri(r)} for r in reasons]
    version = target.get("modified") or target["created"]
    return {"@context": ["http://www.w3.org/ns/anno.jsonld", "https://w3id.org/enricher/context.jsonld"],
            "type": "Annotation", "motivation": "assessing", "body": body,
            "target": {"type": "SpecificResource", "source": target_id, "state": {"type": "TimeState", "sourceDate": version}}}


def post_verdict(client, server, document, **kwargs):
    return client.post(f"{server.key}/verdicts/", document, **kwargs)


def sparql(client, query: str) -> list[dict]:
    response = client.get("/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in row.items()} for row in response.json()["results"]["bindings"]]


def test_a_verdict_needs_a_token_and_sets_the_review_state(client, server, conformance_dir):
    first = machine_ids(client, server)[0]
    assert client.get(first).json()["reviewState"] == state_iri("pending")
    refused = post_verdict(client, server, verdict(client, first, "accepted"), headers=NO_TOKEN)
    assert refused.status_code == 401
    assert client.get(first).json()["reviewState"] == state_iri("pending")

    created = post_verdict(client, server, verdict(client, first, "accepted"))
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith(f"{server.url}{server.key}/verdicts/")
    stored = client.get(location).json()
    assert stored["creator"] == {"type": "Person", "nickname": WRITER} and stored["motivation"] == "assessing"
    assert_w3c_annotation(stored, conformance_dir)
    turtle = client.get(location, headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200 and "oa:assessing" in turtle.text and "oa:TimeState" in turtle.text
    assert client.get(first).json()["reviewState"] == state_iri("accepted")
    # still on the public page, with its state
    page = client.get(f"{server.key}/pages/0.json").json()
    assert [i["reviewState"] for i in page["items"] if i["id"] == first] == [state_iri("accepted")]


def test_a_stale_version_is_a_conflict(client, server):
    first = machine_ids(client, server)[0]
    stale = verdict(client, first, "accepted")
    stale["target"]["state"]["sourceDate"] = "2020-01-01T00:00:00Z"
    response = post_verdict(client, server, stale)
    assert response.status_code == 409 and response.headers["Content-Type"].startswith("application/problem+json")
    assert "changed" in response.json()["detail"]
    assert client.get(first).json()["reviewState"] == state_iri("pending")


@pytest.mark.parametrize("fault, pointer", [
    (lambda v: v.update(motivation="reviewing"), "/motivation"),
    (lambda v: v["body"][0].update(subject="https://w3id.org/enricher/verdicts/maybe"), "/body/0/subject"),
    (lambda v: v["target"].update(source="https://elsewhere.example/annotations/1"), "/target/source"),
    (lambda v: v["target"].pop("state"), "/target/state"),
    (lambda v: v["body"].append({"type": "TextualBody", "value": "x", "purpose": "commenting",
                                 "subject": "https://w3id.org/enricher/verdicts/ugly"}), "/body/1/subject"),
])
def test_a_bad_verdict_is_a_problem_naming_the_field(client, server, fault, pointer):
    document = verdict(client, machine_ids(client, server)[0], "rejected")
    fault(document)
    response = post_verdict(client, server, document)
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == pointer


def test_rejected_and_replaced_leave_the_public_page_and_discovery_says_so(client, server):
    ids = machine_ids(client, server)
    rejected, replaced, kept = ids
    before = client.get("activity/all-changes").json()["totalItems"]
    assert post_verdict(client, server, verdict(client, rejected, "rejected", ["not-present"])).status_code == 201
    machine = client.get(replaced).json()
    correction = {
        "@context": ["http://www.w3.org/ns/anno.jsonld", "https://w3id.org/enricher/context.jsonld"],
        "type": "Annotation", "motivation": "tagging", "replaces": replaced,
        "body": [{"type": "TextualBody", "value": "Katze", "language": "de", "format": "text/plain", "purpose": "tagging"}],
        "target": {"type": "SpecificResource", "source": machine["target"]["source"],
                   "selector": {"type": "FragmentSelector", "value": "xywh=5,5,50,40"}},
    }
    posted = client.post(f"{server.key}/annotations/", correction)
    assert posted.status_code == 201, posted.text
    assert post_verdict(client, server, verdict(client, replaced, "corrected", ["wrong-concept"])).status_code == 201

    page_ids = machine_ids(client, server)
    assert page_ids == [kept, posted.headers["Location"]]
    listing = client.get(f"{server.key}/lists/0.json").json()
    assert [r["@id"] for r in listing["resources"]] == page_ids
    # the annotations themselves stay, with their state, for harvesters of the container
    assert client.get(rejected).json()["reviewState"] == state_iri("rejected")
    assert client.get(replaced).json()["reviewState"] == state_iri("corrected")
    # Change Discovery announces the page again
    stream = client.get("activity/all-changes").json()
    assert stream["totalItems"] > before
    last = client.get(stream["last"]["id"]).json()["orderedItems"]
    assert any(a["type"] == "Update" and a["object"]["id"] == f"{server.url}{server.key}/pages/0.json" for a in last)


def test_verdict_containers_and_sparql(client, server):
    first, second, _ = machine_ids(client, server)
    canvas = client.get(first).json()["target"]["source"]
    a = post_verdict(client, server, verdict(client, first, "accepted")).headers["Location"]
    r = post_verdict(client, server, verdict(client, second, "rejected", ["duplicate"])).headers["Location"]
    statement = {"type": "Annotation", "motivation": "assessing",
                 "body": [{"type": "TextualBody", "value": "exhaustive", "purpose": "assessing", "subject": state_iri("exhaustive")},
                          {"type": "TextualBody", "value": "dog", "purpose": "classifying",
                           "subject": "https://w3id.org/enricher/coco/dog"}],
                 "target": {"type": "SpecificResource", "source": canvas}}
    e = post_verdict(client, server, statement)
    assert e.status_code == 201, e.text

    mine = client.get(f"{server.key}/verdicts/").json()
    assert mine["total"] == 3 and [v["id"] for v in mine["first"]["items"]] == [a, r, e.headers["Location"]]
    assert client.get("verdicts/").json()["total"] == 3
    assert client.get(f"{server.key}/annotations/").json()["total"] == sum(PER_CANVAS)  # verdicts are not in it

    states = sparql(client, """PREFIX enricher: <https://w3id.org/enricher/ns#>
        SELECT ?a ?state WHERE { ?a enricher:reviewState ?state }""")
    assert {(row["a"], row["state"]) for row in states if row["state"] != state_iri("pending")} == {
        (first, state_iri("accepted")), (second, state_iri("rejected"))}
    verdicts = sparql(client, """PREFIX oa: <http://www.w3.org/ns/oa#> PREFIX dcterms: <http://purl.org/dc/terms/>
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT ?v ?target ?label WHERE { ?v oa:motivatedBy oa:assessing ; oa:hasTarget/oa:hasSource ?target ;
          oa:hasBody [ oa:hasPurpose oa:assessing ; dcterms:subject ?concept ] .
          ?concept skos:inScheme <https://w3id.org/enricher/verdicts> ;
          skos:prefLabel ?label FILTER(lang(?label) = "de") }""")
    assert {(row["v"], row["target"], row["label"]) for row in verdicts} == {
        (a, first, "bestätigt"), (r, second, "abgelehnt"), (e.headers["Location"], canvas["id"], "vollständig geprüft")}


def test_retracting_a_verdict_restores_the_previous_state(client, server):
    first = machine_ids(client, server)[0]
    accepted = post_verdict(client, server, verdict(client, first, "accepted")).headers["Location"]
    rejected = post_verdict(client, server, verdict(client, first, "rejected")).headers["Location"]
    assert first not in machine_ids(client, server)
    assert client.delete(rejected, headers=NO_TOKEN).status_code == 401
    assert client.delete(rejected).status_code == 204
    assert client.get(rejected).status_code == 410
    assert client.get(first).json()["reviewState"] == state_iri("accepted") and first in machine_ids(client, server)
    assert client.delete(accepted).status_code == 204
    assert client.get(first).json()["reviewState"] == state_iri("pending")


def test_the_verdict_scheme_is_served(client):
    response = client.get("verdicts", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and "skos:ConceptScheme" in response.text and '"abgelehnt"@de' in response.text


def test_a_calibration_adds_the_calibrated_confidence_wherever_annotations_are_served(client, server):
    from webclient import GENERATOR_SHA

    from enricher.calibrate import apply

    first = machine_ids(client, server)[0]
    before = client.get(first)
    assert "calibratedConfidence" not in before.json()
    container_etag = client.get(f"{server.key}/annotations/").headers["ETag"]
    params = {"method": "platt", "classes": {"dog": {"a": 2.0, "b": -0.5, "n": 50}}}
    with server.store() as store:
        store.save_calibration("c1", GENERATOR_SHA, server.key, "platt", params)
    served = client.get(first)
    expected = round(apply(params, "dog", before.json()["confidence"]), 4)
    assert served.json()["calibratedConfidence"] == expected != before.json()["confidence"]
    assert served.json()["calibration"] == f"{server.url}calibrations/c1"
    assert served.headers["ETag"] != before.headers["ETag"]
    container = client.get(f"{server.key}/annotations/")
    assert container.headers["ETag"] != container_etag
    assert all("calibratedConfidence" in item for item in container.json()["first"]["items"])
    page = client.get(f"{server.key}/pages/0.json").json()
    assert [i["calibratedConfidence"] for i in page["items"] if i["id"] == first] == [expected]
    triples = client.get(first, headers={"Accept": "application/n-triples"}).text
    assert "<https://w3id.org/enricher/ns#calibratedConfidence>" in triples
