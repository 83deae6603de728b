"""The dump: gzip N-Quads or N-Triples holding exactly the store's live annotations (one graph each), the
vocabulary and a licence statement; streamed with flat memory; and the VoID description that counts it."""

from __future__ import annotations

import gc
import gzip
import json
import threading
import tracemalloc

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic
from real_annotations import SHA, comment, corrected, machine_annotations, manifest

from enricher import dump, rdf
from enricher.annotate import manifest_key
from enricher.datafiles import (
    COCO_VOCABULARY,
    METRICS_VOCABULARY,
    TERMS_FILE,
    VERDICT_VOCABULARY,
)
from enricher.errors import InputError
from enricher.index import TERMS_GRAPH, VOCABULARY_GRAPH, Index
from enricher.review import version_of
from enricher.statistics import STATISTICS_GRAPH, VOID, stated
from enricher.store import Store, open_store
from enricher.urls import dataset_url
from enricher.vocab import Vocabulary

BASE = "https://enricher.example.org/"
LICENCE = "https://creativecommons.org/licenses/by/4.0/"
PADDING = "x" * 200  # bytes per quad, without the cost of many quads


@pytest.fixture(scope="module")
def settings(config):
    return config(base_url=BASE, licence=LICENCE)


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def machine(settings, parsed):
    return machine_annotations(settings, Vocabulary.load(), parsed)


def fill(store: Store, parsed, annotations: list[dict]) -> str:
    """Store ANNOTATIONS as one model's run over their canvases; return the manifest key."""
    key = manifest_key(parsed.id)
    store.save_manifest(key, parsed.id, parsed.url, parsed.label, parsed.document)
    canvases: dict[str, list[dict]] = {}
    for annotation in annotations:
        canvases.setdefault(annotation["target"]["source"]["id"], []).append(annotation)
    for canvas_id, on_canvas in canvases.items():
        store.replace_machine_annotations(key, canvas_id, SHA, on_canvas)
    return key


@pytest.fixture
def store(tmp_path, machine, parsed):
    """Machine annotations, one corrected by a person, one deleted, and a person's comment."""
    store = open_store(tmp_path / "enricher.sqlite3")
    key = fill(store, parsed, machine)
    edited = store.get(machine[0]["id"])
    store.update(edited.id, corrected(edited.document), edited.etag, "curator")
    store.delete(machine[4]["id"], None)
    store.create(key, comment(parsed, f"{BASE}{key}/annotations/note1"), "curator")
    yield store
    store.close()


@pytest.fixture
def index():
    index = Index()
    yield index
    index.close()


def live(store: Store) -> dict[str, dict]:
    found, offset = {}, 0
    while page := store.page(None, offset, 100):
        found.update((a.id, a.document) for a in page)
        offset += len(page)
    return found


def canonical(quads) -> ox.Dataset:
    """QUADS in the default graph with canonical blank node labels and literals as Oxigraph keeps them
    (it stores numbers by value: "1.0E0" comes back "1"), for comparing graphs."""
    held = ox.Store()
    held.extend(ox.Quad(q.subject, q.predicate, q.object) for q in quads)
    dataset = ox.Dataset(held)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return dataset


def turtle(path, graph: str | None = None) -> list[ox.Quad]:
    name = ox.NamedNode(graph) if graph else ox.DefaultGraph()
    triples = ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)
    return [ox.Quad(t.subject, t.predicate, t.object, name) for t in triples]


def test_the_nquads_dump_holds_exactly_the_live_annotations_the_vocabulary_and_the_licence(store, index, settings):
    data = gzip.decompress(b"".join(dump.dump(index, store, settings)))
    quads = list(ox.parse(data, format=ox.RdfFormat.N_QUADS))
    graphs: dict[str, list[ox.Quad]] = {}
    opening = []
    for quad in quads:
        if isinstance(quad.graph_name, ox.DefaultGraph):
            opening.append(quad)
        else:
            graphs.setdefault(quad.graph_name.value, []).append(quad)
    # the licence statement first, in the default graph
    assert quads[: len(opening)] == opening == dump.header(BASE, LICENCE)
    dataset = ox.NamedNode(dataset_url(BASE))
    assert ox.Quad(dataset, ox.NamedNode(rdf.DCTERMS + "license"), ox.NamedNode(LICENCE)) in opening
    assert ox.Quad(dataset, ox.NamedNode(VOID + "dataDump"), ox.NamedNode(f"{BASE}dump.nq.gz")) in opening
    # the vocabulary and our terms, as the files say
    vocabulary = turtle(COCO_VOCABULARY) + turtle(VERDICT_VOCABULARY) + turtle(METRICS_VOCABULARY)
    assert canonical(graphs.pop(VOCABULARY_GRAPH)) == canonical(vocabulary)
    assert canonical(graphs.pop(TERMS_GRAPH)) == canonical(turtle(TERMS_FILE))
    # the class counts of the statistics graph
    held = ox.Store()
    held.extend(graphs.pop(STATISTICS_GRAPH))
    assert stated(held) == set(store.class_counts()) != set()
    # each live annotation in its own graph, exactly as its current document says; the deleted one gone
    annotations = live(store)
    assert set(graphs) == set(annotations) and len(annotations) == store.count(None)
    for anno_id, document in annotations.items():
        assert canonical(graphs[anno_id]) == canonical(rdf.annotation_quads(document)), anno_id
    corrected_one = next(a for a in annotations.values() if a.get("creator"))
    assert corrected_one["body"][0]["value"] == "wolf"  # the person's version is the one dumped


def test_the_ntriples_dump_is_the_nquads_dump_merged(store, index, settings):
    quads = gzip.decompress(b"".join(dump.dump(index, store, settings)))
    triples = gzip.decompress(b"".join(dump.dump(index, store, settings, format="ntriples")))
    merged = rdflib.Graph()
    for s, p, o, _ in rdflib.Dataset().parse(data=quads, format="nquads").quads():
        merged.add((s, p, o))
    flat = rdflib.Graph().parse(data=triples, format="nt")
    # the header names the N-Triples dump there, the N-Quads one here
    nq, nt = (rdflib.URIRef(f"{BASE}dump.{ext}.gz") for ext in ("nq", "nt"))
    merged.remove((None, rdflib.URIRef(VOID + "dataDump"), nq))
    flat.remove((None, rdflib.URIRef(VOID + "dataDump"), nt))
    assert len(flat) > 1000 and isomorphic(flat, merged)


def test_uncompressed_dumps_and_bad_formats(store, index, settings):
    plain = b"".join(dump.dump(index, store, settings, compress=False))
    assert plain == gzip.decompress(b"".join(dump.dump(index, store, settings)))
    with pytest.raises(InputError) as caught:
        dump.dump(index, store, settings, format="turtle")
    assert caught.value.where == "turtle"


def test_the_dump_follows_writes_made_after_the_index_was_built(store, index, settings, machine):
    index.refresh(store)
    store.delete(machine[1]["id"], None)
    data = gzip.decompress(b"".join(dump.dump(index, store, settings)))
    quads = ox.parse(data, format=ox.RdfFormat.N_QUADS)
    names = {q.graph_name.value for q in quads if isinstance(q.graph_name, ox.NamedNode)}
    assert machine[1]["id"] not in names and machine[2]["id"] in names


def test_void_describes_the_store(store, settings):
    description = dump.void(store, settings)
    node = ox.NamedNode(dataset_url(BASE))
    assert int(_value(description, VOID + "entities", node)) == store.count(None)
    assert _value(description, rdf.DCTERMS + "license", node) == LICENCE
    assert _value(description, VOID + "sparqlEndpoint", node) == f"{BASE}sparql"
    assert not _objects(description, VOID + "triples", node)  # it would cost a walk over every quad
    dumps = {o.value for o in _objects(description, VOID + "dataDump", node)}
    assert dumps == {f"{BASE}dump.nq.gz", f"{BASE}dump.nt.gz"}
    concepts = {
        body["subject"] for a in live(store).values() for body in a["body"]
        if isinstance(body, dict) and "subject" in body
    }
    (partition,) = _objects(description, VOID + "propertyPartition", node)
    assert int(_value(description, VOID + "distinctObjects", partition)) == len(concepts) > 0
    # and it serializes in every RDF format of the registry
    for fmt in rdf.formats():
        assert fmt.serialize(description)


def test_void_figures_are_the_sparql_counts_and_the_class_partitions_the_store_keeps(store, index, settings, parsed):
    key = manifest_key(parsed.id)
    named = comment(parsed, f"{BASE}{key}/annotations/note2")  # a person names a concept that is no class
    named["body"] = [{**named["body"][0], "subject": "http://www.wikidata.org/entity/Q18789"},
                     {"type": "TextualBody", "value": "dog", "subject": "http://www.wikidata.org/entity/Q144"}]
    store.create(key, named, "curator")
    target = store.page(key, 0, 1)[0]
    verdict = {"id": f"{BASE}{key}/annotations/verdict1", "type": "Annotation", "motivation": "assessing",
               "body": [], "target": {"source": target.id}}
    store.add_verdict(key, verdict, "curator", target=target.id, canvas_id=None, judgement="rejected",
                      version=version_of(target.document))
    index.refresh(store)
    (row,) = json.loads(index.query(SPARQL_COUNTS, format="json").body)["results"]["bindings"]
    description = dump.void(store, settings)
    node = ox.NamedNode(dataset_url(BASE))
    (partition,) = _objects(description, VOID + "propertyPartition", node)
    assert int(_value(description, VOID + "entities", node)) == int(row["annotations"]["value"])
    assert int(_value(description, VOID + "distinctObjects", partition)) == int(row["concepts"]["value"]) > 2
    subsets = _objects(description, VOID + "subset", node)
    partitions = {(_value(description, rdf.ENRICHER_NS + "modelClass", subset),
                   next((o.value for o in _objects(description, rdf.ENRICHER_NS + "partitionModel", subset)), None),
                   int(_value(description, VOID + "entities", subset))) for subset in subsets}
    assert partitions == {(c.concept, c.model_sha256, c.live) for c in store.class_counts()} == {
        (c.concept, c.model_sha256, c.live) for c in stated(index.store)}


SPARQL_COUNTS = f"""SELECT (COUNT(DISTINCT ?annotation) AS ?annotations) (COUNT(DISTINCT ?concept) AS ?concepts)
WHERE {{ ?annotation a <{rdf.OA}Annotation> . OPTIONAL {{ ?annotation <{rdf.OA}hasBody>/<{rdf.DCTERMS}subject> ?concept }} }}"""


def _objects(quads: list[ox.Quad], predicate: str, subject) -> list:
    return [q.object for q in quads if q.subject == subject and q.predicate.value == predicate]


def _value(quads: list[ox.Quad], predicate: str, subject) -> str:
    found = _objects(quads, predicate, subject)
    assert len(found) == 1, predicate
    return found[0].value


def _peak(tmp_path, settings, annotations: int) -> tuple[int, int]:
    """Return (peak Python memory while reading the whole dump, its uncompressed size) for an index of
    ANNOTATIONS graphs of a few long quads each, loaded straight into it (building them through the
    store would test the index's build, not the dump)."""
    with open_store(tmp_path / f"empty-{annotations}.sqlite3") as store, Index() as index:
        index.refresh(store)  # in step with the (empty) store, so the dump rebuilds nothing
        lines = (
            f'<{BASE}a/{n}> <{BASE}p{k}> "{k} of {n}: {PADDING}" <{BASE}a/{n}> .\n'
            for n in range(annotations) for k in range(5)
        )
        index.store.bulk_load("".join(lines).encode("utf-8"), ox.RdfFormat.N_QUADS)
        gc.collect()
        tracemalloc.start()
        try:
            size = sum(len(chunk) for chunk in dump.dump(index, store, settings, compress=False))
            return tracemalloc.get_traced_memory()[1], size
        finally:
            tracemalloc.stop()


def test_memory_stays_flat_as_the_dump_grows(tmp_path, settings):
    small, small_size = _peak(tmp_path, settings, 1_000)
    large, large_size = _peak(tmp_path, settings, 10_000)
    assert large_size > 8 * small_size
    # a sanity ratio, not a benchmark: ten times the data, about the same peak, far below the data's size
    assert large < 2 * small + 1_000_000
    assert large < large_size / 4


def test_a_reader_that_stops_stops_the_producer(store, index, settings):
    chunks = dump.dump(index, store, settings)
    next(chunks)
    next(chunks)
    chunks.close()
    assert not [t for t in threading.enumerate() if t.name == "enricher-dump"]
