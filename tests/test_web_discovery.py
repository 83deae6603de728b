"""Harvesting over real HTTP: a harvester walks IIIF Change Discovery in full, people change the data
through the protocol, and an incremental harvest from the page it reached sees exactly those changes;
the dumps hold exactly what the store holds plus the vocabulary and the licence; VoID counts it and
is linked from the service root; with push_url set, the app pushes every change to a real
``oxigraph serve``."""

from __future__ import annotations

import gzip
import os

import pyoxigraph as ox
import pytest
from real_annotations import manifest
from test_dump import canonical
from test_push import OXIGRAPH, OxigraphServer, expected, wait_for
from test_web_sparql import live, seed_real
from webclient import Client, live_server

from enricher import dump, rdf
from enricher.discovery import CONTEXT
from enricher.index import TERMS_GRAPH, VOCABULARY_GRAPH
from enricher.statistics import VOID
from enricher.urls import dump_url

LICENCE = "https://creativecommons.org/licenses/by/4.0/"
PAGE_SIZE = 3
VOID_DATASET = "{base}void#dataset"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-discovery")
    with live_server(folder, licence=LICENCE, activity_page_size=PAGE_SIZE) as server:
        server.key, _ = seed_real(server)
        yield server


def walk(client: Client, url: str) -> tuple[list[dict], list[dict]]:
    """Follow ``next`` from page URL; return the pages read and their activities, oldest first."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["Link"] == f'<{LICENCE}>; rel="license"'
        page = response.json()
        assert page["@context"] == CONTEXT and page["rights"] == LICENCE
        pages.append(page)
        url = page.get("next", {}).get("id")
    return pages, [item for page in pages for item in page["orderedItems"]]


def test_a_harvester_sees_everything_then_exactly_what_changed(client, server):
    collection = client.get("activity/all-changes").json()
    assert collection["type"] == "OrderedCollection" and collection["rights"] == LICENCE
    pages, activities = walk(client, collection["first"]["id"])
    assert pages[-1]["id"] == collection["last"]["id"] and len(activities) == collection["totalItems"]
    assert all(len(page["orderedItems"]) == PAGE_SIZE for page in pages[:-1])
    parsed = manifest()
    manifest_url = f"{server.url}{server.key}/manifest.json"
    page_urls = {f"{server.url}{server.key}/pages/{c.index}.json" for c in parsed.canvases}
    created = {a["object"]["id"] for a in activities if a["type"] == "Create"}
    assert created == page_urls | {manifest_url}  # every canvas of the real data has annotations
    assert [a["endTime"] for a in activities] == sorted(a["endTime"] for a in activities)
    for url in created:  # every object resolves
        assert client.get(url.removeprefix(server.url)).status_code == 200

    # people change things: canvas 3 loses every annotation, one on canvas 0 is corrected
    with server.store() as store:
        on_three = [a for a in live(store) if a["target"]["source"]["id"] == parsed.canvases[3].id]
        on_zero = next(a for a in live(store) if a["target"]["source"]["id"] == parsed.canvases[0].id)
    for annotation in on_three:
        assert client.delete(annotation["id"]).status_code == 204
    current = client.get(on_zero["id"])
    edited = {**current.json(), "body": [{"type": "TextualBody", "value": "a wolf"}]}
    assert client.put(on_zero["id"], edited, headers={"If-Match": current.headers["ETag"]}).status_code == 200

    # the harvester resumes from the last page it read, after the last activity it saw
    seen = len(pages[-1]["orderedItems"])
    more_pages, more = walk(client, pages[-1]["id"])
    new = more[seen:]
    changed = {(a["type"], a["object"]["id"].removeprefix(f"{server.url}{server.key}/")) for a in new}
    assert changed == {("Delete", "pages/3.json"), ("Update", "pages/0.json"), ("Update", "manifest.json")}
    assert more_pages[0]["orderedItems"][:seen] == pages[-1]["orderedItems"]  # a page read is never rewritten


def test_pages_past_the_last_are_not_found(client):
    last = client.get("activity/all-changes").json()["last"]["id"]
    number = int(last.rsplit("-", 1)[1])
    response = client.get(f"activity/page-{number + 1}")
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"


# ---- dumps and VoID -----------------------------------------------------------------------------------


def _quads(response, fmt: ox.RdfFormat) -> list[ox.Quad]:
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/gzip"
    assert response.headers["Link"] == f'<{LICENCE}>; rel="license"'
    return list(ox.parse(gzip.decompress(response.content), format=fmt))


def test_the_nquads_dump_holds_the_store_the_vocabulary_and_the_licence(client, server):
    response = client.get("dump.nq.gz")
    assert 'filename="dump.nq.gz"' in response.headers["Content-Disposition"]
    quads = _quads(response, ox.RdfFormat.N_QUADS)
    graphs: dict[str, list[ox.Quad]] = {}
    for quad in quads:
        graphs.setdefault(getattr(quad.graph_name, "value", ""), []).append(quad)
    with server.store() as store:
        held = expected(store)  # every live annotation, one graph each, canonical
    assert {name: canonical(graphs[name]) for name in held} == held
    assert set(graphs) == set(held) | {"", VOCABULARY_GRAPH, TERMS_GRAPH}
    dataset = ox.NamedNode(VOID_DATASET.format(base=server.url))
    header = {(q.predicate.value, q.object.value) for q in graphs[""] if q.subject == dataset}
    assert (rdf.DCTERMS + "license", LICENCE) in header
    assert quads[0].subject == dataset  # the licence travels at the head of every copy


def test_the_ntriples_dump_is_the_nquads_dump_merged(client):
    def content(quads: list[ox.Quad]) -> list[ox.Quad]:  # each dump's header names that dump itself
        return [q for q in quads if q.predicate.value != VOID + "dataDump"]

    merged = _quads(client.get("dump.nt.gz"), ox.RdfFormat.N_TRIPLES)
    quads = _quads(client.get("dump.nq.gz"), ox.RdfFormat.N_QUADS)
    assert canonical(content(merged)) == canonical(content(quads)) and len(content(merged)) > 1000


def test_void_counts_the_dataset_and_names_its_endpoint_dumps_and_licence(client, server):
    response = client.get("void", headers={"Accept": "text/turtle"})
    triples = {(q.subject.value, q.predicate.value, q.object.value) for q in ox.parse(response.content, format=ox.RdfFormat.TURTLE)}
    dataset = VOID_DATASET.format(base=server.url)
    with server.store() as store:
        annotations = store.count(None)
    assert {
        (dataset, rdf.DCTERMS + "license", LICENCE),
        (dataset, VOID + "sparqlEndpoint", f"{server.url}sparql"),
        (dataset, VOID + "entities", str(annotations)),
        *((dataset, VOID + "dataDump", dump_url(server.url, extension)) for extension in dump.FORMATS.values()),
    } <= triples
    subsets = {o for s, p, o in triples if s == dataset and p == VOID + "subset"}  # the class partitions
    classed = sum(int(o) for s, p, o in triples if s in subsets and p == VOID + "entities")
    assert subsets and 0 < classed <= annotations


def test_the_service_root_links_the_linked_data_and_every_link_answers(client, server):
    links = client.get("").json()["links"]
    assert links["void"] == f"{server.url}void" and links["sparql"] == f"{server.url}sparql"
    assert links["changes"] == f"{server.url}activity/all-changes"
    assert links["dumps"] == [dump_url(server.url, extension) for extension in dump.FORMATS.values()]
    for link in [value for values in links.values() for value in (values if isinstance(values, list) else [values])]:
        assert client.get(link.removeprefix(server.url)).status_code == 200, link


# ---- pushing to an external triplestore ----------------------------------------------------------------


def test_the_app_pushes_every_change_when_push_url_is_set(tmp_path):
    if OXIGRAPH is None:  # a test dependency, as in test_push: required under CI
        (pytest.fail if os.environ.get("CI") else pytest.skip)("the oxigraph server is missing (pip install oxigraph)")
    remote = OxigraphServer(tmp_path / "remote")
    remote.start()
    try:
        with live_server(tmp_path, push_url=remote.endpoint("gsp"), push_interval=0.1) as server, Client(server) as client:
            _, held = seed_real(server)
            with server.store() as store:
                wait_for(lambda: remote.graphs() == expected(store), "the seeded annotations to reach the triplestore")
            assert client.delete(held[0]["id"]).status_code == 204
            with server.store() as store:
                wait_for(lambda: remote.graphs() == expected(store), "the deletion to reach the triplestore")
            assert held[0]["id"] not in remote.graphs() and len(remote.graphs()) == len(held) - 1 + 1  # and the statistics graph
    finally:
        remote.stop()
