"""The SPARQL endpoint over real HTTP: the documented queries answer what the store holds, every
protocol route (GET, POST form, POST body), every results format, refusals of updates, malformed
queries and timeouts as problems; the index follows writes in the same process, in another one
(the job runner's), and across two gunicorn workers; ``enricher reindex`` rebuilds it."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from click.testing import CliRunner
from real_annotations import comment, corrected, machine_annotations, manifest
from test_dump import canonical, fill
from test_index import PREFIXES, QUERIES, documented_at
from test_web_serve import gunicorn  # noqa: F401 - the `enricher serve` fixture, two workers
from webclient import ANNO, AUTH, Client, live_server

from enricher import rdf
from enricher.annotate import manifest_key
from enricher.cli import main
from enricher.index import VOCABULARY_GRAPH, Index
from enricher.vocab import Vocabulary
from enricher.web.indexing import index_path

RESULTS = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
WIKIDATA = "http://www.wikidata.org/entity/"
ANNOTATIONS = "SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a <http://www.w3.org/ns/oa#Annotation> }"
# a million rows: it ends on its own in well under a second, but never within a millisecond
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { { SELECT * WHERE { ?a ?p ?b } LIMIT 1000 } { SELECT * WHERE { ?c ?q ?d } LIMIT 1000 } }"


def seed_real(server) -> tuple[str, list[dict]]:
    """Store the real annotations of tests/real_annotations.py under SERVER's base URL: a model's run,
    one of them corrected by anna, and ben's comment. Return the manifest key and what is live."""
    parsed = manifest()
    machine = machine_annotations(server.config, Vocabulary.load(), parsed)
    with server.store() as store:
        key = fill(store, parsed, machine)
        edited = store.get(machine[1]["id"])
        store.update(edited.id, corrected(edited.document, "anna"), edited.etag, "anna")
        store.create(key, comment(parsed, f"{server.url}{key}/annotations/c0ffee", "ben"), "ben")
        return key, live(store)


def live(store) -> list[dict]:
    """Every live annotation the store holds."""
    return [a.document for a in store.page(None, 0, store.count(None))]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-sparql")) as server:
        server.key, server.held = seed_real(server)
        yield server


@pytest.fixture(scope="module")
def reference(server):
    """An index built straight from the store, apart from the service's."""
    with server.store() as store, Index() as index:
        index.build(store)
        yield index


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(RESULTS["json"])
    return [{k: v["value"] for k, v in row.items()} for row in response.json()["results"]["bindings"]]


def ask(client: Client, query: str) -> bool:
    response = client.get("/sparql", params={"query": query})
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["type"].endswith("/" + slug)
    return problem


# ---- the documented queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("title", sorted(QUERIES))
def test_documented_queries_answer_what_the_store_holds(client, server, reference, title):
    query = PREFIXES + documented_at(server.url)[title]
    response = client.get("/sparql", params={"query": query}, headers={"Accept": "application/n-triples, " + RESULTS["json"]})
    assert response.status_code == 200, response.text
    expected = reference.query(query, format="json" if "SELECT" in QUERIES[title] else "ntriples")
    if expected.kind == "graph":
        got = ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES)
        assert canonical(got) == canonical(ox.parse(expected.body, format=ox.RdfFormat.N_TRIPLES))
        return
    want = [{k: v["value"] for k, v in row.items()} for row in json.loads(expected.body)["results"]["bindings"]]
    assert rows(response) == want and want  # every documented query finds something here


def test_the_dog_and_horse_canvas_is_what_the_store_says(client, server):
    def canvases(qid: str) -> set[str]:
        return {a["target"]["source"]["id"] for a in server.held if any(b.get("subject") == WIKIDATA + qid for b in a["body"])}

    query = PREFIXES + QUERIES["Canvases of one manifest that show both a dog and a horse"]
    found = rows(client.get("/sparql", params={"query": query}))
    assert [row["canvas"] for row in found] == sorted(canvases("Q144") & canvases("Q726"))
    assert len(found) == 1


def test_counts_per_iconclass_concept_are_the_stores(client, server):
    relabelled = [a for a in server.held if a.get("creator")]  # a "wolf" now: it counts under no Iconclass concept
    assert relabelled
    expected = Counter(b["subject"] for a in server.held if a not in relabelled
                       for b in a["body"] if b.get("subject", "").startswith("https://iconclass.org/"))
    found = rows(client.get("/sparql", params={"query": PREFIXES + QUERIES["How many annotations each Iconclass concept has"]}))
    assert {row["concept"]: int(row["annotations"]) for row in found} == expected


def test_what_people_corrected_is_the_stores(client, server):
    found = rows(client.get("/sparql", params={"query": PREFIXES + QUERIES["Everything one person corrected"]}))
    corrected_ids = [a["id"] for a in server.held if a.get("creator", {}).get("nickname") == "anna"]
    assert [(row["annotation"], row["label"]) for row in found] == [(corrected_ids[0], "wolf")]


# ---- the protocol -------------------------------------------------------------------------------------


def test_get_post_form_and_post_body_give_one_answer(client):
    query = PREFIXES + QUERIES["Everything under Iconclass 25F (animals) on one manifest"]
    by_get = client.get("/sparql", params={"query": query})
    by_form = client.request("POST", "/sparql", data={"query": query})
    by_body = client.request("POST", "/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"})
    assert rows(by_get) == rows(by_form) == rows(by_body) and rows(by_get)
    assert by_get.headers["Vary"] == "Accept"


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_select_answers_in_every_results_format(client, name):
    query = PREFIXES + QUERIES["Everything under Iconclass 25F (animals) on one manifest"]
    expected = rows(client.get("/sparql", params={"query": query}))
    for response in (
        client.get("/sparql", params={"query": query}, headers={"Accept": RESULTS[name]}),
        client.get("/sparql", params={"query": query, "format": name}, headers={"Accept": "text/html"}),
    ):
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(RESULTS[name])
        assert _results(name, response.text) == expected


def _results(name: str, text: str) -> list[dict[str, str]]:
    """Rows of a SELECT answer in results format NAME, as {variable: value}."""
    if name == "json":
        return [{k: v["value"] for k, v in row.items()} for row in json.loads(text)["results"]["bindings"]]
    if name == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if name == "tsv":  # values in N-Triples syntax: <iri>
        head, *lines = text.splitlines()
        names = [v.lstrip("?") for v in head.split("\t")]
        return [{n: v.strip("<>") for n, v in zip(names, line.split("\t"))} for line in lines]
    namespace = {"r": "http://www.w3.org/2005/sparql-results#"}
    import xml.etree.ElementTree as ET

    return [
        {b.get("name"): b[0].text for b in result.findall("r:binding", namespace)}
        for result in ET.fromstring(text).iter("{http://www.w3.org/2005/sparql-results#}result")
    ]


@pytest.mark.parametrize("fmt", rdf.formats(), ids=lambda f: f.name)
def test_construct_answers_in_every_rdf_format(client, fmt):
    query = PREFIXES + "CONSTRUCT { ?c skos:prefLabel ?l } WHERE { ?c skos:broader iconclass:25F ; skos:prefLabel ?l }"
    baseline = client.get("/sparql", params={"query": query, "format": "nt"})
    response = client.get("/sparql", params={"query": query}, headers={"Accept": fmt.media_type})
    assert response.status_code == 200 and response.headers["Content-Type"] == fmt.content_type
    got = canonical(ox.parse(response.content, format=ox.RdfFormat.from_media_type(fmt.media_type)))
    expected = canonical(ox.parse(baseline.content, format=ox.RdfFormat.N_TRIPLES))
    assert got == expected and len(expected) > 3


def test_ask_and_describe(client, server):
    note = f"{server.url}{server.key}/annotations/c0ffee"
    assert ask(client, f"ASK {{ <{note}> ?p ?o }}") is True
    response = client.get("/sparql", params={"query": f"DESCRIBE <{note}>"}, headers={"Accept": "text/turtle"})
    described = ox.parse(response.content, format=ox.RdfFormat.TURTLE)
    assert {(q.subject.value, q.predicate.value) for q in described} >= {(note, rdf.OA + "motivatedBy")}


def test_the_dataset_narrows_by_graph(client, server):
    vocabulary_only = client.get("/sparql", params={"query": ANNOTATIONS, "default-graph-uri": VOCABULARY_GRAPH})
    assert rows(vocabulary_only) == [{"n": "0"}]
    note = f"{server.url}{server.key}/annotations/c0ffee"
    query = "SELECT ?g WHERE { GRAPH ?g { ?a a <http://www.w3.org/ns/oa#Annotation> } }"
    assert rows(client.get("/sparql", params={"query": query, "named-graph-uri": note})) == [{"g": note}]


def test_without_a_query_the_endpoint_describes_itself(client, server):
    response = client.get("/sparql", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/turtle")
    sd = "http://www.w3.org/ns/sparql-service-description#"
    triples = {(q.subject.value, q.predicate.value, q.object.value) for q in ox.parse(response.content, format=ox.RdfFormat.TURTLE)}
    endpoint = f"{server.url}sparql"
    assert {(endpoint, sd + "endpoint", endpoint), (endpoint, sd + "feature", sd + "UnionDefaultGraph")} <= triples
    assert (endpoint, rdf.DCTERMS + "license", server.config.licence) in triples


# ---- refusals -----------------------------------------------------------------------------------------


INSERT = "INSERT DATA { <http://e/a> <http://e/p> <http://e/o> }"


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.get("/sparql", params={"query": INSERT}),
        lambda c: c.request("POST", "/sparql", data={"query": INSERT}),
        lambda c: c.request("POST", "/sparql", data={"update": INSERT}),
        lambda c: c.request("POST", "/sparql", content=INSERT.encode(), headers={"Content-Type": "application/sparql-update"}),
        lambda c: c.get("/sparql", params={"update": INSERT}),
    ],
    ids=["get-query", "form-query", "form-update", "sparql-update-body", "get-update"],
)
def test_updates_are_refused_by_every_route(client, send):
    problem = assert_problem(send(client), 400, "read-only")
    assert "read-only" in problem["detail"]
    assert ask(client, "ASK { <http://e/a> ?p ?o }") is False


@pytest.mark.parametrize("query", ["SELEC * WHERE { ?s ?p ?o }", "SELECT * WHERE { ?s ?p ", "SELECT ?x WHERE { ?x foo:bar ?y }"])
def test_a_malformed_query_is_a_problem_with_the_parsers_message(client, query):
    problem = assert_problem(client.get("/sparql", params={"query": query}), 400, "bad-query")
    assert problem["detail"].startswith("malformed query: ") and problem["instance"].endswith("/sparql")


def test_other_refusals(client):
    assert_problem(client.request("POST", "/sparql", content=b"{}", headers={"Content-Type": "application/json"}), 415,
                   "unsupported-media-type")
    assert_problem(client.request("POST", "/sparql", data={"format": "json"}), 400, "bad-input")
    assert_problem(client.get("/sparql", params=[("query", "ASK {}"), ("query", "ASK {}")]), 400, "bad-input")
    assert_problem(client.get("/sparql", params={"query": ANNOTATIONS}, headers={"Accept": "text/turtle"}), 406, "not-acceptable")
    service = "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }"
    assert_problem(client.get("/sparql", params={"query": service}), 400, "bad-query")


def test_a_query_past_the_timeout_is_a_503_problem(tmp_path):
    with live_server(tmp_path, sparql_timeout=0.001) as server, Client(server) as client:
        response = client.get("/sparql", params={"query": SLOW})
        problem = assert_problem(response, 503, "query-timeout")
        assert "ran longer than" in problem["detail"] and response.headers["Retry-After"]


def test_a_query_while_the_index_loads_too_long_is_a_503_problem(tmp_path):
    # a second, not less: the query after the lock is let go opens the index within it (11-60 ms at load 12)
    with live_server(tmp_path, sparql_timeout=1.0) as server, Client(server) as client:
        loading = server.app.extensions["enricher"]._index_lock  # held as while a large index loads
        with loading:
            response = client.get("/sparql", params={"query": "ASK {}"})
        problem = assert_problem(response, 503, "query-timeout")
        assert "still loading" in problem["detail"] and response.headers["Retry-After"]
        assert client.get("/sparql", params={"query": "ASK {}"}).status_code == 200


# ---- the size of an answer ----------------------------------------------------------------------------

EVERYTHING = "SELECT * WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o"


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_an_answer_under_the_row_cap_is_the_uncapped_answer_byte_for_byte(client, server, name):
    # under a cap the rows are written as TSV, counted and read back: IRIs, blank nodes, typed and
    # language-tagged literals, quotes, backslashes and newlines must all come through unchanged
    capped = client.get("/sparql", params={"query": EVERYTHING, "format": name})
    uncapped = server.app.extensions["enricher"].index().query(EVERYTHING, format=name)
    assert capped.status_code == 200 and server.config.sparql_max_rows
    assert capped.content == uncapped.body and len(_results(name, capped.text)) > 1000
    assert "not a dog" in capped.text  # ben's comment, with its quotes and newline


def test_answers_past_the_caps_are_refused_and_answers_within_them_are_whole(tmp_path):
    with live_server(tmp_path, sparql_max_rows=5, sparql_max_triples=7) as server, Client(server) as client:
        key, _ = seed_real(server)
        for name in RESULTS:
            refused = client.get("/sparql", params={"query": EVERYTHING, "format": name})
            problem = assert_problem(refused, 422, "result-too-large")
            assert "more than 5 rows" in problem["detail"] and "LIMIT" in problem["detail"]
        assert len(rows(client.get("/sparql", params={"query": EVERYTHING + " LIMIT 5"}))) == 5
        assert_problem(client.get("/sparql", params={"query": EVERYTHING + " LIMIT 6"}), 422, "result-too-large")
        by_form = client.request("POST", "/sparql", data={"query": EVERYTHING})
        assert_problem(by_form, 422, "result-too-large")
        assert ask(client, "ASK { ?s ?p ?o }") and rows(client.get("/sparql", params={"query": ANNOTATIONS}))

        graph = "CONSTRUCT WHERE { ?s ?p ?o }"
        turtle = {"Accept": "text/turtle"}
        whole = client.get("/sparql", params={"query": graph + " LIMIT 7"}, headers=turtle)
        assert whole.status_code == 200 and len(list(ox.parse(whole.content, format=ox.RdfFormat.TURTLE))) == 7
        for query in (graph + " LIMIT 8", f"DESCRIBE <{server.url}{key}/annotations/c0ffee>"):
            problem = assert_problem(client.get("/sparql", params={"query": query}, headers=turtle), 422,
                                     "result-too-large")
            assert "more than 7 triples" in problem["detail"]


@pytest.mark.parametrize("name, value", [("json", "a},{b"), ("csv", "a\\nb"), ("xml", "<result>"), ("tsv", "a\\tb\\nc")])
def test_values_that_look_like_row_marks_are_counted_right(tmp_path, name, value):
    # rows are bounded by what each format writes between them; a value holding the same bytes must
    # neither cut an answer at the cap nor let one past it
    at_cap = f'SELECT ?v WHERE {{ VALUES ?v {{ "{value}" "c" }} }}'
    past_cap = f'SELECT ?v WHERE {{ VALUES ?v {{ "{value}" "c" "d" }} }}'
    with live_server(tmp_path, sparql_max_rows=2) as server, Client(server) as client:
        answered = client.get("/sparql", params={"query": at_cap, "format": name})
        assert answered.status_code == 200, answered.text
        assert answered.content == server.app.extensions["enricher"].index().query(at_cap, format=name).body
        assert len(_results(name, answered.text)) == 2
        problem = assert_problem(client.get("/sparql", params={"query": past_cap, "format": name}), 422, "result-too-large")
        assert "more than 2 rows" in problem["detail"]


# ---- the index follows the store -----------------------------------------------------------------------


def test_writes_over_http_show_in_the_next_query(client, server):
    canvas = manifest().canvases[2].id
    note = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "a lantern", "target": canvas}
    posted = client.post(f"{server.key}/annotations/", note)
    assert posted.status_code == 201
    question = f'ASK {{ <{posted.json()["id"]}> <http://www.w3.org/ns/oa#hasBody>/<http://www.w3.org/1999/02/22-rdf-syntax-ns#value> "a lantern" }}'
    assert ask(client, question) is True
    changed = {**posted.json(), "body": {"type": "TextualBody", "value": "a lamp"}}
    updated = client.put(posted.json()["id"], changed, headers={"If-Match": posted.headers["ETag"]})
    assert updated.status_code == 200 and ask(client, question) is False
    assert client.delete(posted.json()["id"]).status_code == 204
    assert ask(client, f'ASK {{ <{posted.json()["id"]}> ?p ?o }}') is False


def test_writes_by_another_process_show_in_the_next_query(client, server):
    """The job runner writes through its own Store (often in another process): the change log carries it."""
    parsed = manifest()
    extra = machine_annotations(server.config, Vocabulary.load(), parsed)[:1]
    extra[0]["id"] += "-rerun"
    before = int(rows(client.get("/sparql", params={"query": ANNOTATIONS}))[0]["n"])
    with server.store() as store:
        store.replace_machine_annotations(manifest_key(parsed.id), extra[0]["target"]["source"]["id"], "cd" * 32, extra)
    assert int(rows(client.get("/sparql", params={"query": ANNOTATIONS}))[0]["n"]) == before + 1


def test_reindex_rebuilds_the_on_disk_index_from_the_store(server, tmp_path):
    settings = {"database": server.config.database, "index_path": str(tmp_path / "rebuilt.oxigraph")}
    result = CliRunner().invoke(main, ["reindex", "--database", settings["database"], "--index-path", settings["index_path"]])
    assert result.exit_code == 0, result.output
    with server.store() as store:
        count = store.count(None)
    assert f"{count} annotations" in result.output
    with Index(settings["index_path"]) as rebuilt:
        answer = json.loads(rebuilt.query(ANNOTATIONS, format="json").body)
        assert answer["results"]["bindings"][0]["n"]["value"] == str(count)
        assert rebuilt.seq > 0  # it follows the change log from there


def test_the_index_lives_next_to_the_database_by_default(server, client):
    assert rows(client.get("/sparql", params={"query": ANNOTATIONS}))
    path = index_path(server.config)
    assert path == Path(server.config.database).with_suffix(".oxigraph") and path.is_dir()
    with server.store() as store:  # the snapshot was brought up to date when the process loaded it
        assert 0 < int(path.with_name(path.name + ".seq").read_text()) <= store.last_change()


def test_two_gunicorn_workers_answer_every_write(gunicorn):  # noqa: F811 - the imported fixture
    """Concurrent queries spread over both workers; each sees a write made through either."""
    note = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "x",
            "target": gunicorn.manifest.canvases[0].id}
    posted = httpx.post(f"{gunicorn.url}{gunicorn.key}/annotations/", json=note, headers={**AUTH, "Content-Type": ANNO})
    assert posted.status_code == 201, posted.text
    question = {"query": f'ASK {{ <{posted.json()["id"]}> ?p ?o }}'}
    start, answers = threading.Barrier(12), []

    def query() -> None:
        with httpx.Client(timeout=120) as client:
            start.wait()
            response = client.get(f"{gunicorn.url}sparql", params=question)
            answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=query) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 200 and json.loads(text)["boolean"] for status, text in answers), answers
    assert len(answers) == 12
    assert index_path(gunicorn.config).is_dir()  # the snapshot the workers loaded their copies from
    assert "cannot use the on-disk RDF index" not in gunicorn.log.read_text()  # neither fell back to a full build
