"""The RDF index: the documented queries answer what was inserted, the index follows the store's
writes exactly, and the endpoint's refusals, formats, timeout, dumps and VoID."""

from __future__ import annotations

import csv
import gc
import io
import json
import re
import threading
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import SKOS
from real_annotations import (
    DETECTIONS,
    OTHER_SHA,
    SHA,
    comment,
    corrected,
    machine_annotations,
    manifest,
)

from enricher import rdf
from enricher.datafiles import COCO_VOCABULARY, PROJECT_ROOT
from enricher.errors import NotAcceptable, QueryError, QueryTimeout, UpdateRefused
from enricher.index import TERMS_GRAPH, VOCABULARY_GRAPH, Index
from enricher.statistics import STATISTICS_GRAPH, stated
from enricher.store import Store, open_store
from enricher.vocab import Vocabulary

DOCS = PROJECT_ROOT / "docs" / "queries.md"
BASE = "https://enricher.example.org/"  # the base URL of the annotations here, as of the one the docs name
WIKIDATA = "http://www.wikidata.org/entity/"
ICONCLASS = "https://iconclass.org/"
# pyoxigraph cannot stop a query: this one (about 3 million rows over a small store) ends on its own
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"


def documented() -> tuple[str, dict[str, str]]:
    """The prefix block and each query of docs/queries.md under its section title."""
    text = DOCS.read_text(encoding="utf-8")
    prefixes, queries = "", {}
    for title, block in re.findall(r"^## ([^\n]+)\n(?:(?!^## ).)*?```sparql\n(.*?)```", text, re.DOTALL | re.MULTILINE):
        if block.startswith("PREFIX"):
            prefixes = block
        else:
            queries[title] = block
    return prefixes, queries


PREFIXES, QUERIES = documented()


def documented_at(base_url: str) -> dict[str, str]:
    """The documented queries with the annotation they name moved to BASE_URL (where the same detection's
    annotation has the same id but for the base)."""
    return {title: query.replace(BASE, base_url) for title, query in QUERIES.items()}


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.load()


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def machine(config, vocabulary, parsed):
    return machine_annotations(config(base_url=BASE), vocabulary, parsed)


@pytest.fixture(scope="module")
def elsewhere(config, vocabulary):
    """The same detections on another manifest (the queries of one manifest must leave them out)."""
    return machine_annotations(config(base_url=BASE), vocabulary, manifest(2))


@pytest.fixture(scope="module")
def people(machine, parsed):
    """A machine annotation anna corrected (replacing machine[1]), a person's own comment, and a machine
    annotation ben corrected (replacing machine[4])."""
    container = machine[0]["id"].rsplit("/", 1)[0] + "/"
    return [corrected(machine[1], "anna"), comment(parsed, container + "c0ffee", "ben"), corrected(machine[4], "ben")]


@pytest.fixture(scope="module")
def held(machine, elsewhere, people):
    """What the index should hold: the machine annotations of both manifests with the corrected ones
    replaced, and the comment."""
    edited = {a["id"]: a for a in people}
    return [edited.pop(a["id"], a) for a in machine + elsewhere] + list(edited.values())


@pytest.fixture(scope="module")
def index(machine, elsewhere, people):
    index = Index()
    assert index.build(machine + elsewhere) == len(machine + elsewhere)
    index.put(people)  # the corrected ones replace their machine versions
    yield index
    index.close()


def select(index: Index, query: str, **options) -> list[dict[str, str]]:
    """Run a SELECT, return its rows as {variable: value} (through the JSON results format)."""
    answer = index.query(query, format="json", **options)
    assert answer.kind == "select" and answer.content_type.startswith("application/sparql-results+json")
    results = json.loads(answer.body)
    return [{k: v["value"] for k, v in row.items()} for row in results["results"]["bindings"]]


def run(index: Index, title: str) -> list[dict[str, str]]:
    return select(index, PREFIXES + QUERIES[title])


def subjects(annotation: dict) -> list[str]:
    return [body["subject"] for body in annotation["body"] if "subject" in body]


def canvas_of(annotation: dict) -> str:
    return annotation["target"]["source"]["id"]


def manifest_of(annotation: dict) -> str:
    return annotation["target"]["source"]["partOf"][0]["id"]


# ---- the documented queries ---------------------------------------------------------------------------


def test_every_documented_query_is_tested():
    tested = {
        "Canvases of one manifest that show both a dog and a horse", "How many annotations each Iconclass concept has",
        "Annotations above 0.8 confidence by one model on one manifest",
        "Everything under Iconclass 25F (animals) on one manifest", "Labels in one language",
        "Everything one person corrected", "One annotation, whole",
    }
    assert set(QUERIES) == tested


def test_canvases_of_one_manifest_with_a_dog_and_a_horse(index, held, parsed):
    ours = [a for a in held if manifest_of(a) == parsed.id]
    dogs = {canvas_of(a) for a in ours if WIKIDATA + "Q144" in subjects(a)}
    horses = {canvas_of(a) for a in ours if WIKIDATA + "Q726" in subjects(a)}
    rows = run(index, "Canvases of one manifest that show both a dog and a horse")
    assert rows == [{"canvas": c} for c in sorted(dogs & horses)]
    assert len(rows) == 1  # the manifest has dogs and horses apart too, and the other one a canvas with both
    assert f"<{parsed.id}>" in QUERIES["Canvases of one manifest that show both a dog and a horse"]


def test_counts_per_iconclass_concept(filled, machine):
    store, key = filled
    others = [a for a in machine if a["generator"]["modelSha256"] != SHA]  # a second model's partitions
    for canvas, on_canvas in _by_canvas(others).items():
        store.replace_machine_annotations(key, canvas, others[0]["generator"]["modelSha256"], on_canvas)
    relabelled = store.get(machine[0]["id"])
    store.update(relabelled.id, corrected(relabelled.document), relabelled.etag, "curator")  # now a "wolf"
    index = Index()
    index.refresh(store)
    live = [stored.document for stored in store.page(None, 0, 10_000) if stored.id != relabelled.id]
    expected = Counter(s for a in live for s in set(subjects(a)) if s.startswith(ICONCLASS))
    rows = run(index, "How many annotations each Iconclass concept has")
    assert {row["concept"]: int(row["annotations"]) for row in rows} == expected  # the relabelled one left out
    assert max(expected.values()) > 1
    labels = {c: str(label) for c, _, label in _coco().triples((None, SKOS.prefLabel, None)) if label.language == "en"}
    assert {row["concept"]: row["label"] for row in rows} == {c: labels[URIRef(c)] for c in expected}
    assert [int(row["annotations"]) for row in rows] == sorted((int(r["annotations"]) for r in rows), reverse=True)
    gone = live[0]
    store.delete(gone["id"], None)
    index.refresh(store)  # the statistics follow the change log
    expected.subtract(s for s in set(subjects(gone)) if s.startswith(ICONCLASS))
    rows = run(index, "How many annotations each Iconclass concept has")
    assert {row["concept"]: int(row["annotations"]) for row in rows} == +expected


def test_confident_annotations_of_one_model_on_one_manifest(index, held, parsed):
    title = "Annotations above 0.8 confidence by one model on one manifest"
    expected = sorted(
        ((a["id"], canvas_of(a), a["confidence"]) for a in held
         if manifest_of(a) == parsed.id and a.get("generator", {}).get("modelSha256") == SHA and a["confidence"] > 0.8),
        key=lambda row: (-row[2], row[0]),
    )
    rows = run(index, title)
    assert [(row["annotation"], row["canvas"], float(row["confidence"])) for row in rows] == expected
    assert len(expected) >= 3 and OTHER_SHA not in QUERIES[title]
    left_out = {a["id"] for a in held if a.get("confidence", 0) > 0.8} - {r["annotation"] for r in rows}
    assert {manifest_of(a) for a in held if a["id"] in left_out} == {parsed.id, manifest(2).id}  # other model's


def _coco() -> Graph:
    return Graph().parse(COCO_VOCABULARY)


def test_everything_under_iconclass_25f_on_one_manifest(index, held, parsed):
    # rdflib walks the same file's hierarchy independently of Oxigraph
    coco, animals = _coco(), URIRef(ICONCLASS + "25F")
    expected = {
        (a["id"], s) for a in held if manifest_of(a) == parsed.id for s in subjects(a)
        if animals in set(coco.transitive_objects(URIRef(s), SKOS.broader))
    }
    rows = run(index, "Everything under Iconclass 25F (animals) on one manifest")
    assert {(row["annotation"], row["concept"]) for row in rows} == expected
    assert len({a for a, _ in expected}) >= 4  # bear, giraffe, zebra, bird
    assert not any(row["concept"] == ICONCLASS + "34B11" for row in rows)  # the dog sits under 34


def test_labels_in_one_language(index, held, vocabulary, parsed):
    canvas = parsed.canvases[0].id
    expected = {
        (a["id"], s, vocabulary.lookup(label).labels["de"])
        for a, (_, label, *_rest) in zip(held, DETECTIONS) if canvas_of(a) == canvas
        for s in subjects(a) if s.startswith(WIKIDATA)
    }
    rows = run(index, "Labels in one language")
    assert {(row["annotation"], row["concept"], row["label"]) for row in rows} == expected
    assert {"Hund", "Pferd"} <= {label for *_, label in expected}


def test_everything_one_person_corrected(index, people):
    rows = run(index, "Everything one person corrected")
    assert rows == [{"annotation": people[0]["id"], "modified": people[0]["modified"], "label": "wolf"}]
    assert 'foaf:nick "anna"' in QUERIES["Everything one person corrected"]  # ben corrected one too


def test_one_annotation_whole(index, held):
    answer = index.query(PREFIXES + QUERIES["One annotation, whole"], format="ntriples")
    assert answer.kind == "graph" and answer.content_type == "application/n-triples"
    named = [a for a in held if f"<{a['id']}>" in QUERIES["One annotation, whole"]]
    assert len(named) == 1 and WIKIDATA + "Q5" in subjects(named[0])  # the person on canvas 0
    got = ox.parse(answer.body, format=ox.RdfFormat.N_TRIPLES)
    assert canonical(got) == canonical(rdf.annotation_quads(named[0], graph=None))


# ---- formats ------------------------------------------------------------------------------------------


ANIMALS = PREFIXES + QUERIES["Everything under Iconclass 25F (animals) on one manifest"]


def test_select_answers_in_every_results_format(index):
    rows = select(index, ANIMALS)
    xml = index.query(ANIMALS, accept="application/sparql-results+xml")
    assert xml.content_type.startswith("application/sparql-results+xml") and xml.body.count(b"<result>") == len(rows)
    table = index.query(ANIMALS, accept="text/csv")
    assert table.content_type == "text/csv; charset=utf-8"
    assert list(csv.DictReader(io.StringIO(table.body.decode()))) == rows
    tsv = index.query(ANIMALS, accept="text/tab-separated-values").body.decode().splitlines()
    assert tsv[0] == "?annotation\t?concept" and len(tsv) == len(rows) + 1


def test_ask(index, people):
    answer = index.query(f"ASK {{ <{people[1]['id']}> ?p ?o }}")
    assert (answer.kind, json.loads(answer.body)["boolean"]) == ("ask", True)
    answer = index.query("ASK { <https://example.org/nothing> ?p ?o }", accept="application/sparql-results+xml")
    assert b"<boolean>false</boolean>" in answer.body


@pytest.mark.parametrize("fmt", rdf.formats(), ids=lambda f: f.name)
def test_construct_answers_in_every_rdf_format(index, fmt):
    query = PREFIXES + "CONSTRUCT { ?c skos:prefLabel ?l } WHERE { ?c skos:broader iconclass:25F ; skos:prefLabel ?l }"
    answer = index.query(query, accept=fmt.media_type)
    assert answer.content_type == fmt.content_type
    triples = {(q.subject, q.predicate, q.object) for q in ox.parse(answer.body, format=ox.RdfFormat.from_media_type(fmt.media_type))}
    coco = _coco()
    expected = {
        (str(c), str(label), label.language) for c in coco.subjects(SKOS.broader, URIRef(ICONCLASS + "25F"))
        for label in coco.objects(c, SKOS.prefLabel)
    }
    assert {(s.value, o.value, o.language) for s, _, o in triples} == expected


def test_describe_gives_the_annotation_with_its_blank_nodes(index, people):
    answer = index.query(f"DESCRIBE <{people[1]['id']}>", format="ntriples")
    assert answer.kind == "graph"
    # the concise bounded description: the annotation and its blank nodes, not the canvas's own triples
    expected = [q for q in rdf.annotation_quads(people[1], graph=None) if not q.subject.value.startswith("https://images.")]
    assert canonical(ox.parse(answer.body, format=ox.RdfFormat.N_TRIPLES)) == canonical(expected)


def test_results_formats_the_query_kind_cannot_have_are_refused(index):
    with pytest.raises(NotAcceptable, match="query results formats"):
        index.query(ANIMALS, accept="text/turtle")
    with pytest.raises(NotAcceptable, match="RDF format"):
        index.query("CONSTRUCT WHERE { ?s ?p ?o }", format="csv")


def test_the_dataset_can_be_narrowed_by_graph(index, machine):
    only_vocabulary = select(index, "SELECT (COUNT(*) AS ?n) WHERE { ?a a <http://www.w3.org/ns/oa#Annotation> }",
                             default_graphs=[VOCABULARY_GRAPH])
    assert only_vocabulary == [{"n": "0"}]
    rows = select(index, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?a a <http://www.w3.org/ns/oa#Annotation> } }",
                  named_graphs=[machine[2]["id"], TERMS_GRAPH])
    assert rows == [{"g": machine[2]["id"]}]
    with pytest.raises(QueryError, match="not a graph IRI"):
        index.query("ASK { ?s ?p ?o }", default_graphs=["not an IRI"])


# ---- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <http://e/a> <http://e/p> <http://e/o> }",
        "PREFIX oa: <http://www.w3.org/ns/oa#>\nDELETE WHERE { ?a a oa:Annotation }",
        "# a comment with SELECT in it\nclear all",
        "BASE <http://e/> PREFIX : <http://e/#> DROP GRAPH <g>",
        "LOAD <http://127.0.0.1:1/data.ttl>",
        "WITH <http://e/g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_updates_are_refused(index, update):
    before = len(index.store)
    with pytest.raises(UpdateRefused, match="read-only") as caught:
        index.query(update, where="http://localhost/sparql")
    assert caught.value.status == 400 and caught.value.where == "http://localhost/sparql"
    assert len(index.store) == before


def test_words_in_strings_iris_and_names_are_not_keywords(index):
    query = 'SELECT ?service WHERE { BIND("INSERT DATA; SERVICE" AS ?service) FILTER(?service != <http://e/SERVICE>) }'
    assert select(index, "# DROP ALL\n" + query) == [{"service": "INSERT DATA; SERVICE"}]


def test_service_is_refused(index):
    with pytest.raises(QueryError, match="SERVICE"):
        index.query("SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }")


@pytest.mark.parametrize("query", ["SELEC * WHERE { ?s ?p ?o }", "SELECT * WHERE { ?s ?p ", "SELECT ?x WHERE { ?x foo:bar ?y }"])
def test_malformed_queries_say_where(index, query):
    with pytest.raises(QueryError, match=r"malformed query: .*\d+:\d+") as caught:
        index.query(query, where="http://localhost/sparql")
    assert caught.value.status == 400


def _small_index(slots: int) -> Index:
    index = Index(slots=slots)
    index.store.extend(
        ox.Quad(ox.NamedNode(f"http://e/{i}"), ox.NamedNode("http://e/p"), ox.Literal(str(i)), ox.NamedNode("http://e/g"))
        for i in range(150)
    )
    return index


def test_a_query_past_its_timeout_is_answered_503_and_its_slot_comes_back():
    index = _small_index(slots=1)
    with pytest.raises(QueryTimeout, match="ran longer than") as caught:
        index.query(SLOW, timeout=0.001)
    assert caught.value.status == 503
    # the timed-out query still holds the only slot; the next one waits for it, then runs
    assert select(index, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", timeout=None) == [{"n": "150"}]
    index.close()


def test_when_every_slot_is_busy_a_query_times_out_waiting():
    index = _small_index(slots=1)
    started = threading.Event()
    finished = []

    def long_query():
        started.set()
        finished.append(index.query(SLOW, timeout=None))

    worker = threading.Thread(target=long_query)
    worker.start()
    started.wait()
    while not index.running:  # until the long query holds the slot
        threading.Event().wait(0.001)
    with pytest.raises(QueryTimeout, match="slot"):
        index.query("ASK { ?s ?p ?o }", timeout=0.001)
    worker.join()
    assert finished[0].kind == "select"
    index.close()


# ---- following the store ------------------------------------------------------------------------------


DOUBLE = ox.NamedNode(rdf.XSD + "double")


def canonical(triples) -> ox.Dataset:
    """Triples in the default graph with blank nodes renamed by RDFC-1.0, and doubles in one lexical
    form (Oxigraph stores 4.2E-1 as 0.42): equal exactly when the graphs are isomorphic."""

    def term(node):
        return ox.Literal(float(node.value)) if isinstance(node, ox.Literal) and node.datatype == DOUBLE else node

    dataset = ox.Dataset(ox.Quad(t.subject, t.predicate, term(t.object)) for t in triples)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return dataset


def _graph_of(index: Index, anno_id: str) -> ox.Dataset:
    return canonical(index.store.quads_for_pattern(None, None, None, ox.NamedNode(anno_id)))


def _annotation_graphs(index: Index) -> set[str]:
    return {g.value for g in index.store.named_graphs()} - {VOCABULARY_GRAPH, TERMS_GRAPH, STATISTICS_GRAPH}


def assert_mirrors(index: Index, store: Store) -> None:
    """The index holds exactly the store's live annotations, each as its current document's RDF, and
    the store's class counts in its statistics graph."""
    live = {}
    offset = 0
    while page := store.page(None, offset, 100):
        live.update((s.id, s.document) for s in page)
        offset += len(page)
    assert _annotation_graphs(index) == set(live)
    for anno_id, document in live.items():
        assert _graph_of(index, anno_id) == canonical(rdf.annotation_quads(document, graph=None)), anno_id
    assert stated(index.store) == set(store.class_counts())


def _by_canvas(annotations: list[dict]) -> dict[str, list[dict]]:
    canvases: dict[str, list[dict]] = {}
    for annotation in annotations:
        canvases.setdefault(canvas_of(annotation), []).append(annotation)
    return canvases


@pytest.fixture
def filled(tmp_path, machine, parsed):
    """A real SQLite store holding the machine annotations of one model run."""
    store = open_store(tmp_path / "enricher.sqlite3")
    key = machine[0]["id"].split("/")[-3]
    store.save_manifest(key, parsed.id, parsed.url, "Test manifest", {"id": parsed.id})
    for canvas, on_canvas in _by_canvas([a for a in machine if a["generator"]["modelSha256"] == SHA]).items():
        store.replace_machine_annotations(key, canvas, SHA, on_canvas)
    yield store, key
    store.close()


def test_the_index_follows_every_kind_of_write(filled, machine, parsed):
    store, key = filled
    index = Index()
    index.refresh(store)  # first use: built from the store
    assert_mirrors(index, store)
    assert index.refresh(store) == 0
    # a person corrects one, posts one, deletes one; a re-run moves a box and drops a detection
    edited = store.get(machine[0]["id"])
    store.update(edited.id, corrected(edited.document, "anna"), edited.etag, "anna")
    store.create(key, comment(parsed, machine[0]["id"].rsplit("/", 1)[0] + "/note1", "anna"), "anna")
    store.delete(machine[3]["id"], None)
    canvas2 = [a for a in machine if canvas_of(a) == parsed.canvases[2].id and a["generator"]["modelSha256"] == SHA]
    moved = {**canvas2[0], "id": canvas2[0]["id"] + "-moved", "confidence": 0.5}
    store.replace_machine_annotations(key, parsed.canvases[2].id, SHA, [moved])
    assert index.refresh(store) > 0
    assert_mirrors(index, store)
    rows = select(index, PREFIXES + QUERIES["Everything one person corrected"])
    assert [row["annotation"] for row in rows] == [machine[0]["id"]]
    assert index.refresh(store) == 0  # applying the log again changes nothing


def test_changes_made_during_a_build_are_not_lost(filled, machine):
    store, _ = filled
    index = Index()
    pages = []
    original = store.page

    def page_and_delete(k, offset, limit):  # a writer deletes rows while the build pages through
        pages.append(offset)
        if len(pages) == 2:
            for stored in original(None, 0, 3):
                store.delete(stored.id, None)
        return original(k, offset, limit)

    store.page = page_and_delete
    import enricher.index as module

    sizes = module.BATCH, module.OVERLAP
    module.BATCH, module.OVERLAP = 2, 1  # small pages, so the deletions shift rows past the overlap
    try:
        index.build(store)
    finally:
        module.BATCH, module.OVERLAP = sizes
        del store.page
    assert len(pages) > 3
    assert_mirrors(index, store)


def test_an_annotation_that_is_not_rdf_is_left_out_with_a_warning(machine, caplog):
    broken = {**machine[0], "id": machine[0]["id"] + "-broken", "rights": "http://ex[ample.org/"}
    index = Index()
    assert index.build([machine[1], broken, machine[2]]) == 2
    assert _annotation_graphs(index) == {machine[1]["id"], machine[2]["id"]}
    assert broken["id"] in caplog.text


def test_an_index_on_disk_resumes_where_it_stopped(tmp_path, filled, machine):
    store, _ = filled
    path = tmp_path / "enricher.oxigraph"
    index = Index(path)
    index.refresh(store)
    seq = index.seq
    assert seq > 0 and Path(str(path) + ".seq").read_text() == str(seq)
    index.close()
    del index
    gc.collect()  # RocksDB keeps its lock until the store object is gone
    store.delete(machine[0]["id"], None)
    again = Index(path)
    assert again.seq == seq
    assert again.refresh(store) == 1  # only the change since, no rebuild
    assert_mirrors(again, store)


def test_an_index_of_another_database_is_rebuilt(tmp_path, filled, machine):
    store, _ = filled
    path = tmp_path / "other.oxigraph"
    index = Index(path)
    index.build(machine)
    index._set_seq(10**6)  # as if made from a database with a longer log
    index.close()
    del index
    gc.collect()
    reopened = Index(path)
    assert reopened.seq == 10**6
    reopened.refresh(store)
    assert reopened.seq < 10**6
    assert_mirrors(reopened, store)
