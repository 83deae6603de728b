"""The W3C Web Annotation Protocol, read side, over real HTTP: containers as LDP Basic Containers
(header by header), paging through more than two AnnotationPages, the Prefer variants, annotations,
and JSON-LD and Turtle that parse to the same graph."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest
import rdflib
from conformance import assert_w3c_annotation, assert_w3c_collection, assert_w3c_page
from factories import make_manifest
from rdflib.compare import isomorphic
from webclient import ANNO, links, live_server, seed

from enricher.datafiles import LDP_CONTEXT_FILE
from enricher.jsonld import ANNO_CONTEXT, context_files
from enricher.web.turtle import LDP_CONTEXT

PAGE_SIZE = 5
PER_CANVAS = (6, 4, 3)  # 13 annotations: pages of 5, 5 and 3
TOTAL = sum(PER_CANVAS)
LDP = "http://www.w3.org/ns/ldp#"
TYPE_LINK = f'<{LDP}BasicContainer>; rel="type"'
CONSTRAINED_LINK = f'<http://www.w3.org/TR/annotation-protocol/>; rel="{LDP}constrainedBy"'
MINIMAL = f'return=representation;include="{LDP}PreferMinimalContainer"'
IRIS = 'return=representation;include="http://www.w3.org/ns/oa#PreferContainedIRIs"'
DESCRIPTIONS = 'return=representation;include="http://www.w3.org/ns/oa#PreferContainedDescriptions"'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-annotations"), page_size=PAGE_SIZE) as server:
        document = make_manifest(3, [("a", 1000, 800), ("b", 1000, 800), ("c", 600, 400)], "https://images.example.org/iiif")
        server.key, server.manifest = seed(server, document, PER_CANVAS)
        yield server


@pytest.fixture
def container(server) -> str:
    return f"{server.url}{server.key}/annotations/"


def allowed(response) -> set[str]:
    return {m.strip() for m in response.headers["Allow"].split(",")}


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers["Vary"].split(",")}


def stored_ids(server, key) -> list[str]:
    with server.store() as store:
        return [a.id for a in store.page(key, 0, 1000)]


# containers: headers

def test_container_get_headers(client, container):
    response = client.get(container)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == ANNO
    assert set(links(response)) == {TYPE_LINK, CONSTRAINED_LINK}
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert allowed(response) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert vary(response) == {"accept", "prefer"}
    assert response.headers["Content-Location"] == container + "?iris=0" == response.json()["id"]
    assert ANNO in response.headers["Accept-Post"]
    assert "Preference-Applied" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_container_head_sends_the_headers_of_get(client, container):
    get, head = client.get(container), client.head(container)
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "ETag", "Allow", "Vary", "Content-Location", "Accept-Post", "Content-Length"):
        assert head.headers[name] == get.headers[name], name
    assert links(head) == links(get)


def test_container_options(client, container):
    response = client.options(container)
    assert response.status_code == 200 and response.content == b""
    assert allowed(response) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert set(links(response)) == {TYPE_LINK, CONSTRAINED_LINK}
    assert ANNO in response.headers["Accept-Post"]


def test_container_preflight(client, container):
    response = client.options(container, headers={"Origin": "https://viewer.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


# containers: body and paging

def test_container_describes_itself_and_embeds_the_first_page(client, container, server, conformance_dir):
    body = client.get(container).json()
    assert body["@context"][0] == ANNO_CONTEXT and LDP_CONTEXT in body["@context"]
    assert {"BasicContainer", "AnnotationCollection"} <= set(body["type"])
    assert body["total"] == TOTAL and body["label"]
    first = body["first"]
    assert first["id"] == container + "?iris=0&page=0" and first["type"] == "AnnotationPage"
    assert [item["id"] for item in first["items"]] == stored_ids(server, server.key)[:PAGE_SIZE]
    assert first["next"] == container + "?iris=0&page=1" and "prev" not in first
    assert body["last"] == container + "?iris=0&page=2"
    assert_w3c_collection(body, conformance_dir)


def test_paging_walks_more_than_two_pages(client, container, server, conformance_dir):
    seen, url, index = [], client.get(container).json()["first"]["id"], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200 and response.headers["Content-Type"] == ANNO
        assert response.headers["ETag"] and "accept" in vary(response)
        page = response.json()
        assert page["id"] == url and page["type"] == "AnnotationPage"
        assert page["partOf"] == {"id": container + "?iris=0", "type": "AnnotationCollection", "total": TOTAL}
        assert page["startIndex"] == index * PAGE_SIZE
        assert ("prev" in page) == (index > 0)
        if index:
            assert page["prev"] == container + f"?iris=0&page={index - 1}"
        assert_w3c_page(page, conformance_dir)
        for item in page["items"]:
            assert_w3c_annotation({"@context": page["@context"], **item}, conformance_dir)
        seen += [item["id"] for item in page["items"]]
        url, index = page.get("next"), index + 1
    assert index == 3
    assert seen == stored_ids(server, server.key) and len(set(seen)) == TOTAL


def test_page_etags_differ_between_pages(client, container):
    tags = {client.get(container + f"?iris=0&page={n}").headers["ETag"] for n in range(3)}
    assert len(tags) == 3


@pytest.mark.parametrize("page, status", [("3", 404), ("99", 404), ("-1", 400), ("two", 400)])
def test_pages_outside_the_container(client, container, page, status):
    response = client.get(container + f"?page={page}")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"


# Prefer

def test_prefer_minimal_container_links_its_pages(client, container):
    response = client.get(container, headers={"Prefer": MINIMAL})
    body = response.json()
    assert body["first"] == container + "?iris=0&page=0" and body["last"] == container + "?iris=0&page=2"
    assert body["total"] == TOTAL and "items" not in body and "contains" not in body
    assert response.headers["Preference-Applied"] == "return=representation"
    assert response.headers["Content-Location"] == body["id"] == container + "?iris=0"


def test_prefer_contained_iris(client, container, server):
    response = client.get(container, headers={"Prefer": IRIS})
    body = response.json()
    assert response.headers["Content-Location"] == body["id"] == container + "?iris=1"
    assert body["first"]["items"] == stored_ids(server, server.key)[:PAGE_SIZE]
    assert body["first"]["next"] == container + "?iris=1&page=1" and body["last"] == container + "?iris=1&page=2"
    following = client.get(body["first"]["next"]).json()
    assert following["items"] == stored_ids(server, server.key)[PAGE_SIZE : 2 * PAGE_SIZE]
    assert following["partOf"]["id"] == container + "?iris=1"


def test_prefer_contained_descriptions_is_the_default(client, container):
    plain, explicit = client.get(container), client.get(container, headers={"Prefer": DESCRIPTIONS})
    assert explicit.json() == plain.json()
    assert explicit.headers["ETag"] == plain.headers["ETag"]
    assert explicit.headers["Preference-Applied"] == "return=representation"


def test_prefer_minimal_with_iris(client, container):
    prefer = f'return=representation; include="{LDP}PreferMinimalContainer http://www.w3.org/ns/oa#PreferContainedIRIs"'
    body = client.get(container, headers={"Prefer": prefer}).json()
    assert body["first"] == container + "?iris=1&page=0"


def test_each_representation_has_its_own_etag(client, container):
    tags = {client.get(container, headers={"Prefer": p}).headers["ETag"] for p in (MINIMAL, IRIS, DESCRIPTIONS)}
    assert len(tags) == 3


def test_iris_query_names_a_representation(client, container, server):
    response = client.get(container + "?iris=1")
    assert response.headers["Content-Location"] == container + "?iris=1"
    assert all(isinstance(item, str) for item in response.json()["first"]["items"])


def test_conditional_get(client, container, server):
    etag = client.get(container).headers["ETag"]
    assert client.get(container, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(container, headers={"If-None-Match": '"something-else"'}).status_code == 200


# the container of everything

def test_everything_container_is_read_only(client, server):
    response = client.get(server.url + "annotations/")
    assert response.status_code == 200
    assert allowed(response) == {"GET", "HEAD", "OPTIONS"} and "Accept-Post" not in response.headers
    assert set(links(response)) == {TYPE_LINK, CONSTRAINED_LINK}
    body = response.json()
    with server.store() as store:
        assert body["total"] == store.count(None) >= TOTAL
    assert response.headers["Content-Location"] == body["id"] == server.url + "annotations/?iris=0"


def test_unknown_containers_are_not_found(client, server):
    assert client.get(server.url + "0123456789abcdef/annotations/").status_code == 404
    assert client.get(server.url + "not-a-key/annotations/").status_code == 404


# annotations

@pytest.fixture
def annotation(server) -> str:
    return stored_ids(server, server.key)[0]


def test_annotation_get_headers(client, annotation, server, conformance_dir):
    response = client.get(annotation)
    assert response.status_code == 200 and response.headers["Content-Type"] == ANNO
    assert response.headers.get_list("Link") == [f'<{LDP}Resource>; rel="type"']
    with server.store() as store:
        assert response.headers["ETag"] == store.get(annotation).etag
    assert allowed(response) == {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
    assert "accept" in vary(response)
    body = response.json()
    assert body["id"] == annotation and body["@context"][0] == ANNO_CONTEXT
    assert_w3c_annotation(body, conformance_dir)
    assert all(isinstance(b["value"], str) and b["value"] for b in body["body"])


def test_annotation_head_and_options(client, annotation):
    get, head, options = client.get(annotation), client.head(annotation), client.options(annotation)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"] and head.headers.get_list("Link") == get.headers.get_list("Link")
    assert options.status_code == 200 and allowed(options) == allowed(get)
    assert options.headers.get_list("Link") == get.headers.get_list("Link")


def test_annotation_conditional_get(client, annotation):
    etag = client.get(annotation).headers["ETag"]
    assert client.get(annotation, headers={"If-None-Match": etag}).status_code == 304


def test_unknown_annotation_is_not_found(client, container):
    response = client.get(container + "0" * 32)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"


def test_nothing_acceptable_is_406(client, annotation):
    response = client.get(annotation, headers={"Accept": "image/png"})
    assert response.status_code == 406 and response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("accept", ["application/ld+json", ANNO, "application/json", "*/*", "text/html,*/*;q=0.8"])
def test_json_ld_is_the_default(client, annotation, accept):
    response = client.get(annotation, headers={"Accept": accept})
    assert response.status_code == 200 and response.headers["Content-Type"] == ANNO


# JSON-LD and Turtle: the same graph

def json_ld_graph(document: dict, conformance_dir) -> rdflib.Graph:
    """Parse DOCUMENT with pyoxigraph's JSON-LD parser, an implementation independent of the pyld one the
    server uses (rdflib's own skips type-scoped contexts), its context URLs replaced by the contexts."""
    files = {**context_files(conformance_dir), LDP_CONTEXT.split("://", 1)[1]: LDP_CONTEXT_FILE}
    contexts = document["@context"] if isinstance(document["@context"], list) else [document["@context"]]
    inlined = [json.loads(files[url.split("://", 1)[1]].read_text())["@context"] for url in contexts]
    quads = ox.parse(json.dumps({**document, "@context": inlined}).encode(), format=ox.RdfFormat.JSON_LD)
    triples = ox.serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads], format=ox.RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=triples.decode(), format="nt")


@pytest.mark.parametrize(
    "target, prefer",
    [("annotation", None), ("container", None), ("container", IRIS), ("container", MINIMAL), ("page", None)],
)
def test_turtle_and_json_ld_are_the_same_graph(client, container, annotation, conformance_dir, target, prefer):
    url = {"annotation": annotation, "container": container, "page": container + "?iris=0&page=2"}[target]
    headers = {"Prefer": prefer} if prefer else {}
    as_json = client.get(url, headers=headers)
    as_turtle = client.get(url, headers={**headers, "Accept": "text/turtle"})
    assert as_turtle.status_code == 200 and as_turtle.headers["Content-Type"].startswith("text/turtle")
    assert as_turtle.headers["ETag"] != as_json.headers["ETag"]
    assert "accept" in vary(as_turtle)
    from_turtle = rdflib.Graph().parse(data=as_turtle.text, format="turtle")
    from_json = json_ld_graph(as_json.json(), conformance_dir)
    assert len(from_turtle) >= 5
    assert isomorphic(from_turtle, from_json)
