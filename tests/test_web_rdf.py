"""RDF over real HTTP, for every format of enricher.rdf's registry: annotations (a model's and a
person's), containers, their pages, IIIF pages and lists each parse, in every format and by Accept
as by ``format``, to the graph their JSON-LD means (read by an independent JSON-LD processor); the
vocabulary, our terms and VoID in every format are one graph; the OpenAPI document names every format."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic
from test_web_annotations import json_ld_graph
from test_web_sparql import seed_real
from webclient import live_server

from enricher import quality, rdf
from enricher.datafiles import COCO_VOCABULARY, METRICS_VOCABULARY, TERMS_FILE
from enricher.jsonld import ENRICHER_CONTEXT, OWN_CONTEXTS, to_graph
from enricher.web.openapi import spec

PAGE_SIZE = 4
JSONLD = "application/ld+json"
# what each resource is, by a path built on the manifest key and the annotations' ids
RESOURCES = {
    "annotation": lambda s: s.machine_id,
    "persons-annotation": lambda s: s.person_id,
    "container": lambda s: f"{s.key}/annotations/",
    "container-of-iris": lambda s: f"{s.key}/annotations/?iris=1",
    "container-page": lambda s: f"{s.key}/annotations/?iris=0&page=1",
    "page-of-everything": lambda s: "annotations/?iris=0&page=2",
    "iiif-page": lambda s: f"{s.key}/pages/0.json",
    "iiif-list": lambda s: f"{s.key}/lists/1.json",
}
IIIF = ("iiif-page", "iiif-list")  # contexts with remote scoped contexts: read by pyld
GRAPHS = ("void", "vocab", "ns", "metrics")  # RDF only, Turtle first


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-rdf"), page_size=PAGE_SIZE) as server:
        server.key, held = seed_real(server)
        server.machine_id = next(a["id"] for a in held if "generator" in a and "creator" not in a)
        server.person_id = next(a["id"] for a in held if a.get("motivation") == "commenting")
        yield server


def graph_of(response, fmt: rdf.Format) -> rdflib.Graph:
    """Parse a response body in FMT into one graph (named graphs merged). JSON-LD goes through
    pyoxigraph: rdflib's JSON-LD parser ignores type-scoped contexts."""
    if fmt.name == "jsonld":
        quads = list(ox.parse(response.content, format=ox.RdfFormat.JSON_LD))
        text = ox.serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads], format=ox.RdfFormat.N_TRIPLES)
        return rdflib.Graph().parse(data=text.decode(), format="nt")
    dataset = rdflib.Dataset()
    dataset.parse(data=response.content, format=fmt.media_type)
    merged = rdflib.Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        merged.add((s, p, o))
    return merged


def meaning(name: str, document: dict, conformance_dir) -> rdflib.Graph:
    """The graph a JSON-LD document we serve means: pyoxigraph's processor with the contexts inlined,
    pyld (offline) for the IIIF contexts whose scoped contexts pyoxigraph cannot load."""
    return to_graph(document, conformance_dir) if name in IIIF else json_ld_graph(document, conformance_dir)


@pytest.mark.parametrize("fmt", rdf.formats(), ids=lambda f: f.name)
@pytest.mark.parametrize("name", RESOURCES)
def test_every_format_is_the_graph_the_json_ld_means(client, server, conformance_dir, name, fmt):
    path = RESOURCES[name](server)
    native = client.get(path)
    assert native.status_code == 200 and native.headers["Content-Type"].startswith(JSONLD)
    expected = meaning(name, native.json(), conformance_dir)
    assert len(expected) >= 5
    separator = "&" if "?" in path else "?"
    by_accept = client.get(path, headers={"Accept": fmt.media_type})
    by_param = client.get(f"{path}{separator}format={fmt.extension}", headers={"Accept": "text/html;q=0.1"})
    for response in (by_accept, by_param):
        assert response.status_code == 200, response.text
        assert "Accept" in response.headers["Vary"]
        if fmt.name == "jsonld":  # the JSON-LD we build, not a re-serialization
            assert response.content == native.content and response.headers["ETag"] == native.headers["ETag"]
            continue
        assert response.headers["Content-Type"] == fmt.content_type
        assert response.headers["ETag"] != native.headers["ETag"]
        assert isomorphic(graph_of(response, fmt), expected)
    assert by_accept.content == by_param.content and by_accept.headers["ETag"] == by_param.headers["ETag"]


@pytest.mark.parametrize("name", ["annotation", "container-page", "iiif-page"])
def test_each_format_has_its_own_etag_for_conditional_gets(client, server, name):
    path = RESOURCES[name](server)
    tags = set()
    for fmt in rdf.formats():
        response = client.get(path, headers={"Accept": fmt.media_type})
        again = client.get(path, headers={"Accept": fmt.media_type, "If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304
        tags.add(response.headers["ETag"])
    assert len(tags) == len(rdf.formats())


def test_format_wins_over_accept(client, server):
    response = client.get(f"{server.key}/pages/0.json?format=nt", headers={"Accept": "text/turtle"})
    assert response.headers["Content-Type"] == rdf.get("ntriples").content_type


@pytest.mark.parametrize("path", ["{key}/annotations/", "{key}/pages/0.json", "void", "vocab"])
def test_unknown_formats_and_unacceptable_types_are_406(client, server, path):
    url = path.format(key=server.key)
    for response in (client.get(f"{url}?format=docx"), client.get(url, headers={"Accept": "text/html"})):
        assert response.status_code == 406 and response.headers["Content-Type"] == "application/problem+json"
        assert "turtle" in response.json()["detail"]


# ---- the vocabulary, our terms, VoID ----------------------------------------------------------------


@pytest.mark.parametrize("path", GRAPHS)
def test_graphs_are_one_graph_in_every_format(client, path):
    turtle = client.get(path)
    assert turtle.status_code == 200 and turtle.headers["Content-Type"] == rdf.get("turtle").content_type
    baseline = graph_of(turtle, rdf.get("turtle"))
    assert len(baseline) > 10
    for fmt in rdf.formats():
        response = client.get(path, params={"format": fmt.name})
        assert response.headers["Content-Type"] == fmt.content_type and response.headers["Vary"] == "Accept"
        assert isomorphic(graph_of(response, fmt), baseline), fmt.name


def test_the_vocabulary_is_the_mapping_files(client):
    served = graph_of(client.get("vocab", params={"format": "nt"}), rdf.get("ntriples"))
    assert isomorphic(served, rdflib.Graph().parse(COCO_VOCABULARY))
    dog = rdflib.URIRef("https://w3id.org/enricher/coco/dog")
    assert rdflib.URIRef("http://www.wikidata.org/entity/Q144") in set(served.objects(dog, rdflib.namespace.SKOS.exactMatch))


def test_our_terms_are_the_ontology_file_and_cover_the_context(client):
    response = client.get("ns")
    assert response.content == TERMS_FILE.read_bytes()  # the hand-written Turtle, comments included
    terms = graph_of(response, rdf.get("turtle"))
    context = json.loads(OWN_CONTEXTS[ENRICHER_CONTEXT].read_text())["@context"]
    ours = {v["@id"].split(":", 1)[1] for v in context.values() if isinstance(v, dict) and v.get("@id", "").startswith("enricher:")}
    namespace = rdflib.Namespace(rdf.ENRICHER_NS)
    assert ours and all((namespace[term], rdflib.RDFS.label, None) in terms for term in ours)
    assert client.get("context.jsonld").json()["@context"] == context


def test_the_metrics_are_the_dqv_file_and_define_every_evaluation_term(client):
    response = client.get("metrics")
    assert response.content == METRICS_VOCABULARY.read_bytes()  # the hand-written Turtle, comments included
    metrics = graph_of(response, rdf.get("turtle"))
    namespace, dqv = rdflib.Namespace(rdf.ENRICHER_NS), rdflib.Namespace("http://www.w3.org/ns/dqv#")
    assert quality.METRICS and all((namespace[m], rdflib.RDF.type, dqv.Metric) in metrics for m in quality.METRICS)
    published = {v["@id"].split(":", 1)[1] for v in quality.CONTEXT.values()
                 if isinstance(v, dict) and v.get("@id", "").startswith("enricher:")}
    defined_elsewhere = {"calibration"}  # an annotation's term too: in our terms at /ns
    assert all((namespace[t], rdflib.RDFS.label, None) in metrics for t in published - defined_elsewhere)


# ---- the OpenAPI document -----------------------------------------------------------------------------


RDF_OPERATIONS = ["getEverything", "getContainer", "getAnnotation", "createAnnotation", "getCanvasPage", "getCanvasList",
                  "getVoid", "getVocabulary", "getTerms", "sparqlQuery"]


def _operations() -> dict[str, dict]:
    document = spec()
    found = {}
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found[operation["operationId"]] = operation
    return found


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = spec()["components"]["responses"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("operation", RDF_OPERATIONS)
def test_the_openapi_document_names_every_rdf_format(operation):
    responses = _operations()[operation]["responses"]
    success = _resolve(responses["201" if "201" in responses else "200"])
    assert {f.media_type for f in rdf.formats()} <= set(success["content"])
