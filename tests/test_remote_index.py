"""The remote RDF index (setting index = remote) on a real ``oxigraph serve``, fed by the pusher: /sparql
and the dumps answer as the embedded index over the same store does, and VoID states what SPARQL counts;
a triplestore stopped in the middle of a job makes /sparql answer 503 with Retry-After (VoID, read from
the store, still answers), and once started again on the same data and port it catches up with the
counts of the embedded index."""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from conftest import Reply, unavailable
from dramatiq_cluster import served_book
from test_dump import canonical
from test_index import PREFIXES, SLOW, documented_at
from test_push import OXIGRAPH, OxigraphServer, wait_for
from test_web_sparql import ANNOTATIONS, RESULTS, seed_real
from webclient import AUTH, live_server

from enricher import dump
from enricher.datafiles import DEMO_WEIGHTS
from enricher.errors import (
    NotAcceptable,
    QueryError,
    QueryTimeout,
    ResultTooLarge,
    UpdateRefused,
)
from enricher.index import Index
from enricher.statistics import VOID
from enricher.urls import dataset_url, public_base

EITHER = f"{RESULTS['json']}, application/n-triples;q=0.9"
# SPARQL counts two runs over the same manifest must share
COUNTS = {
    "annotations": ANNOTATIONS,
    "quads": "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }",
    "concepts": "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?a <http://www.w3.org/ns/oa#hasBody> ?b . "
                "?b <http://purl.org/dc/terms/subject> ?c }",
    "targets": "SELECT (COUNT(DISTINCT ?t) AS ?n) WHERE { ?a <http://www.w3.org/ns/oa#hasTarget> ?t }",
}


@pytest.fixture
def triplestore(tmp_path):
    """``oxigraph serve`` with the union of its graphs as the default graph, as the remote index needs."""
    if OXIGRAPH is None:
        unavailable("the oxigraph server is missing (pip install oxigraph)")
    server = OxigraphServer(tmp_path / "triplestore", "--union-default-graph")
    server.start()
    yield server
    server.stop()


def remote(server: OxigraphServer) -> dict:
    """The settings of a remote index on SERVER, fed through its Graph Store Protocol endpoint."""
    return {"index": "remote", "index_url": server.base + "/query", "push_url": server.endpoint("gsp"),
            "push_interval": 0.1}


def sparql(url: str, query: str, accept: str = RESULTS["json"]) -> httpx.Response:
    return httpx.post(url.rstrip("/") + "/sparql", data={"query": query}, headers={"Accept": accept}, timeout=60)


def counts(url: str) -> dict[str, int]:
    """Each of COUNTS as the /sparql of the service at URL answers it."""
    found = {}
    for name, query in COUNTS.items():
        response = sparql(url, query)
        assert response.status_code == 200, response.text
        found[name] = int(response.json()["results"]["bindings"][0]["n"]["value"])
    return found


def embedded_counts(index: Index) -> dict[str, int]:
    return {name: int(json.loads(index.query(query).body)["results"]["bindings"][0]["n"]["value"])
            for name, query in COUNTS.items()}


def void_figures(url: str) -> dict[str, int]:
    """The annotations and distinct concepts the VoID description of the service at URL states."""
    response = httpx.get(url.rstrip("/") + "/void", headers={"Accept": "application/n-triples"}, timeout=60)
    assert response.status_code == 200, response.text
    quads = list(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
    (annotations,) = (q.object for q in quads if q.subject.value == dataset_url(url) and q.predicate.value == VOID + "entities")
    (concepts,) = (q.object for q in quads if q.predicate.value == VOID + "distinctObjects")
    return {"annotations": int(annotations.value), "concepts": int(concepts.value)}


def answer(body: bytes) -> Counter | ox.Dataset:
    """A SELECT's rows (JSON results) as a multiset, or a CONSTRUCT's triples (N-Triples) canonicalized."""
    if body.startswith(b"{"):
        return Counter(frozenset((k, v["value"]) for k, v in row.items()) for row in json.loads(body)["results"]["bindings"])
    return canonical(ox.parse(body, format=ox.RdfFormat.N_TRIPLES))


def graphs(nquads: bytes) -> dict[str, ox.Dataset]:
    """N-Quads by graph name ("" for the default graph), canonicalized."""
    grouped: dict[str, list[ox.Quad]] = {}
    for quad in ox.parse(nquads, format=ox.RdfFormat.N_QUADS):
        grouped.setdefault(getattr(quad.graph_name, "value", ""), []).append(quad)
    return {name: canonical(quads) for name, quads in grouped.items()}


def test_the_remote_index_answers_as_the_embedded_one(tmp_path, triplestore):
    with live_server(tmp_path, **remote(triplestore)) as server:
        seed_real(server)
        service = server.app.extensions["enricher"]
        with server.store() as store, Index(base=public_base(server.config.base_url)) as reference:
            reference.build(store)
            wait_for(lambda: counts(server.url) == embedded_counts(reference), "the pusher to feed the triplestore")
            for title, query in documented_at(server.url).items():  # every documented query, through the protocol
                response = sparql(server.url, PREFIXES + query, EITHER)
                assert response.status_code == 200, (title, response.text)
                assert answer(response.content) == answer(reference.query(PREFIXES + query, accept=EITHER).body), title
            assert void_figures(server.url) == {name: counts(server.url)[name] for name in ("annotations", "concepts")}
            served = httpx.get(server.url + "dump.nq.gz", timeout=60)
            assert served.status_code == 200
            expected = b"".join(dump.dump(reference, store, server.config, compress=False))
            assert graphs(gzip.decompress(served.content)) == graphs(expected)
        # the formats and the refusals of the embedded index
        csv = sparql(server.url, ANNOTATIONS, RESULTS["csv"])
        assert csv.headers["Content-Type"].startswith("text/csv") and csv.text.splitlines()[0] == "n"
        turtle = sparql(server.url, "CONSTRUCT WHERE { ?s a ?o } LIMIT 3", "text/turtle")
        assert turtle.headers["Content-Type"].startswith("text/turtle")
        assert len(list(ox.parse(turtle.content, format=ox.RdfFormat.TURTLE))) == 3
        index = service.index()
        with pytest.raises(UpdateRefused):
            index.query("INSERT DATA { <urn:a> <urn:b> <urn:c> }")
        with pytest.raises(QueryError):
            index.query("SELECT * WHERE { ?s ?p")
        with pytest.raises(ResultTooLarge):
            index.query("SELECT * WHERE { ?s ?p ?o }", max_rows=5)
        with pytest.raises(ResultTooLarge):
            index.query("CONSTRUCT WHERE { ?s ?p ?o }", max_triples=5)
        with pytest.raises(NotAcceptable):
            index.query(ANNOTATIONS, accept="text/turtle")
        with pytest.raises(QueryTimeout):  # the triplestore runs it on: oxigraph serve --timeout-s ends it there
            index.query(SLOW, timeout=0.2)
        bad = sparql(server.url, "SELECT * WHERE { ?s ?p")
        assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"


def job_state(server, job: str) -> dict:
    """The job whose URL is JOB."""
    return httpx.get(job, timeout=30).json()


def hold(book: Path, canvas: int, stub, released: threading.Event) -> None:
    """Serve the info.json of canvas CANVAS of the manifest file BOOK from STUB, answered once RELEASED is
    set: the job cannot enrich that canvas before."""
    document = json.loads(book.read_text())
    service = document["items"][canvas]["items"][0]["items"][0]["body"]["service"][0]
    info = httpx.get(service["id"] + "/info.json", timeout=30)
    service["id"] = stub.route(f"/held-{canvas}/info.json", Reply(body=info.content, headers={
        "Content-Type": "application/json"}, held=released)).removesuffix("/info.json")
    book.write_text(json.dumps(document))


def test_a_triplestore_stopped_mid_job_answers_503_then_catches_up(tmp_path, triplestore, stub):
    settings = {**remote(triplestore), "job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True,
                "device": "cpu", "batch": 1}
    # held canvases make the job outlast the outage whatever the timing: the one before last is answered
    # once the triplestore is down (so a canvas is enriched during the outage), the last once it is back
    during, after = threading.Event(), threading.Event()
    with served_book(tmp_path, 12) as book, live_server(tmp_path, **settings) as server:
        hold(tmp_path / "book.json", 10, stub, during)
        hold(tmp_path / "book.json", 11, stub, after)
        try:
            job = httpx.post(server.url + "jobs", json={"manifest": book}, headers=AUTH, timeout=30).json()["id"]
            wait_for(lambda: job_state(server, job)["progress"]["done"] >= 2, "two canvases", deadline=240)
            triplestore.stop()
            done = job_state(server, job)["progress"]["done"]
            during.set()
            down = sparql(server.url, ANNOTATIONS)
            assert down.status_code == 503, down.text
            assert down.headers["Content-Type"] == "application/problem+json" and down.headers["Retry-After"].isdigit()
            problem = down.json()
            assert problem["type"].endswith("/index-unavailable") and "Traceback" not in down.text
            assert void_figures(server.url)["annotations"] >= 2  # VoID reads the store, not the triplestore
            wait_for(lambda: job_state(server, job)["progress"]["done"] > done, "a canvas enriched during the outage")
            assert job_state(server, job)["state"] == "running", "the job ended during the outage: nothing was tested"
            triplestore.start()  # the same port and data
        finally:
            during.set()
            after.set()
        wait_for(lambda: job_state(server, job)["state"] not in ("queued", "running"), "the job", deadline=240)
        assert job_state(server, job)["state"] == "done"
        assert stub.hits["/held-10/info.json"] and stub.hits["/held-11/info.json"]  # the job met both holds
        with server.store() as store, Index(base=public_base(server.config.base_url)) as reference:
            reference.build(store)
            uninterrupted = embedded_counts(reference)
        assert uninterrupted["annotations"] > 0
        wait_for(lambda: counts(server.url) == uninterrupted, "the triplestore to catch up")
