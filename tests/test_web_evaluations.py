"""Evaluations over real HTTP: POST runs one on a manifest's reviews, GET serves DQV JSON-LD, Turtle and
the HTML report by negotiation, the calibration by its URL; harvesters (Change Discovery, SPARQL, the
dump) learn of the calibrated confidence it brings; every response checked against OpenAPI."""

from __future__ import annotations

import gzip

import pytest
from rdflib import Graph, Namespace, URIRef
from reviewed import EXPECTED, SHA, fill
from webclient import live_server

DQV = Namespace("http://www.w3.org/ns/dqv#")
ENR = Namespace("https://w3id.org/enricher/ns#")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-evaluations")) as server:
        with server.store() as store:
            server.key, _ = fill(store, server.config)
        yield server


def test_an_evaluation_is_run_and_served_in_every_form(client, server):
    response = client.post(f"/{server.key}/evaluations", {"threshold": 0.5}, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    url = response.headers["Location"]
    assert url.startswith(f"{server.url}{server.key}/evaluations/")
    graph = response.json()["@graph"]
    dog_tp = next(n for n in graph if n["id"] == url + "#dog-truePositives")
    assert dog_tp["value"]["@value"] == EXPECTED["dog"][2]

    turtle = client.get(url, headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200 and turtle.headers["Content-Type"].startswith("text/turtle")
    triples = Graph().parse(data=turtle.text, format="turtle")
    recall = URIRef(url + "#recall")
    assert (recall, DQV.isMeasurementOf, ENR.recall) in triples
    assert triples.value(recall, DQV.value).toPython() == pytest.approx(3 / 4)

    page = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["Content-Type"].startswith("text/html") and page.text.count("<svg") == 2
    data = client.get(url)
    assert data.headers["Content-Type"].startswith("application/ld+json") and data.json()["@graph"][0]["id"] == url

    head = next(n for n in graph if n["id"] == url)
    calibration = client.get(head["calibration"])
    assert calibration.status_code == 200
    assert calibration.json()["modelSha256"] == SHA and calibration.json()["manifest"] == server.key
    assert set(calibration.json()["params"]["default"]) >= {"a", "b"}


def test_writes_need_a_token_and_bad_requests_name_the_field(client, server):
    anonymous = client.http.post(f"/{server.key}/evaluations")
    assert anonymous.status_code == 401
    bad = client.post(f"/{server.key}/evaluations", {"threshold": 2}, headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["pointer"] == "/threshold"
    unknown = client.post("/0123456789abcdef/evaluations")
    assert unknown.status_code == 404


def test_an_unknown_evaluation_is_404(client, server):
    assert client.get(f"/{server.key}/evaluations/nothing").status_code == 404
    assert client.get("/calibrations/nothing").status_code == 404


def activities(client) -> list[dict]:
    """Every activity of the Change Discovery stream, oldest first."""
    found, url = [], client.get("activity/all-changes").json()["first"]["id"]
    while url:
        page = client.get(url).json()
        found += page["orderedItems"]
        url = page.get("next", {}).get("id")
    return found


def test_a_calibration_reaches_change_discovery_sparql_and_the_dump(client, server):
    """A new calibration changes what the model's annotations say (calibratedConfidence, the calibration
    named): Change Discovery announces their pages, SPARQL and the dump carry the served values."""
    seen = len(activities(client))
    response = client.post(f"/{server.key}/evaluations", {"threshold": 0.5}, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    head = next(n for n in response.json()["@graph"] if n["id"] == response.headers["Location"])

    updated = {a["object"]["id"] for a in activities(client)[seen:] if a["type"] == "Update"}
    assert {f"{server.url}{server.key}/pages/{n}.json" for n in (0, 1)} <= updated

    with server.store() as store:
        machine = [a.id for a in store.page(server.key, 0, 100) if a.model_sha256 == SHA]
    served = {anno_id: client.get(anno_id).json() for anno_id in machine}
    assert {a["calibration"] for a in served.values()} == {head["calibration"]}
    query = """PREFIX enricher: <https://w3id.org/enricher/ns#>
        SELECT ?a ?c ?k WHERE { ?a enricher:calibratedConfidence ?c ; enricher:calibration ?k }"""
    answer = client.get("sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
    rows = {b["a"]["value"]: (float(b["c"]["value"]), b["k"]["value"]) for b in answer.json()["results"]["bindings"]}
    assert rows == {i: (pytest.approx(a["calibratedConfidence"]), a["calibration"]) for i, a in served.items()}

    dump = gzip.decompress(client.get("dump.nq.gz").content).decode()
    assert f"<{head['calibration']}>" in dump
