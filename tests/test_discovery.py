"""IIIF Change Discovery: a harvester walks the whole stream, a re-run changes the results, and the
harvester, resuming from the page it reached, sees exactly the creates, updates and deletes; pages
are valid Change Discovery JSON-LD and never change once full."""

from __future__ import annotations

import copy
import json
import threading

import pyoxigraph as ox
import pytest
from pyld import jsonld as pyld
from pyld.documentloader.frozen import BUNDLED_CONTEXTS
from real_annotations import (
    DETECTIONS,
    OTHER_SHA,
    SHA,
    comment,
    machine_annotations,
    manifest,
)

from enricher import discovery
from enricher.annotate import manifest_key
from enricher.errors import NotFound
from enricher.jsonld import document_loader
from enricher.store import Store, open_store
from enricher.urls import activity_page_url
from enricher.vocab import Vocabulary

BASE = "https://enricher.example.org/"
SIZE = 3  # activities per page: small, so the stream spans pages and the last one is partly full
AS = "https://www.w3.org/ns/activitystreams#"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
XSD = "http://www.w3.org/2001/XMLSchema#"


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.load()


@pytest.fixture(scope="module")
def v3():
    return manifest(3)


@pytest.fixture(scope="module")
def v2():
    return manifest(2)


@pytest.fixture(scope="module")
def annotations(config, vocabulary, v3, v2):
    """Machine annotations of both manifests, each with the model that made it."""
    settings = config(base_url=BASE)
    models = [generator.model_sha256 for *_, generator in DETECTIONS]
    return {
        parsed.id: list(zip(machine_annotations(settings, vocabulary, parsed), models)) for parsed in (v3, v2)
    }


@pytest.fixture
def store(tmp_path, v3, v2):
    store = open_store(tmp_path / "enricher.sqlite3")
    for parsed in (v3, v2):
        store.save_manifest(manifest_key(parsed.id), parsed.id, parsed.url, parsed.label, parsed.document)
    yield store
    store.close()


def run(store: Store, parsed, annotations, canvas: int, sha: str, keep) -> None:
    """Re-run one model on canvas CANVAS of PARSED, publishing those of ANNOTATIONS that KEEP selects."""
    canvas_id = parsed.canvases[canvas].id
    chosen = [a for a, model in annotations if model == sha and a["target"]["source"]["id"] == canvas_id and keep(a)]
    store.replace_machine_annotations(manifest_key(parsed.id), canvas_id, sha, chosen)


def label(annotation: dict) -> str:
    return annotation["body"][0]["value"]


def page_of(parsed, n: int) -> str:
    return f"{BASE}{manifest_key(parsed.id)}/pages/{n}.json"


def manifest_of(parsed) -> str:
    return f"{BASE}{manifest_key(parsed.id)}/manifest.json"


class Harvester:
    """Reads the stream forward from where it stopped: the page it reached and how many items it has."""

    def __init__(self, store: Store):
        self.store = store
        self.page = 0
        self.position = 0  # activities processed so far
        self.pages: dict[int, dict] = {}  # every page fetched, as last seen

    def harvest(self) -> list[tuple[str, str, str]]:
        """Process every activity past the position reached; return them as (type, object id, object type)."""
        seen = []
        discovery.sync(self.store, BASE)  # the service's follower has caught up with the change log
        top = discovery.collection(self.store, BASE, SIZE)
        while True:
            document = discovery.page(self.store, BASE, self.page, SIZE)
            self.pages[self.page] = document
            items = document["orderedItems"]
            skip = self.position - document["startIndex"]
            assert 0 <= skip <= len(items)
            for activity in items[skip:]:
                seen.append((activity["type"], activity["object"]["id"], activity["object"]["type"]))
            self.position = document["startIndex"] + len(items)
            if "next" not in document:
                break
            assert len(items) == SIZE  # only the last page may be partly full
            self.page += 1
        assert document["id"] == top["last"]["id"]
        assert self.position == top["totalItems"]
        return seen


def test_a_harvester_resumes_and_sees_exactly_what_a_rerun_changed(store, annotations, v3, v2):
    first = annotations[v3.id]
    for canvas in range(4):
        for sha in (SHA, OTHER_SHA):
            run(store, v3, first, canvas, sha, lambda a: True)
    harvester = Harvester(store)
    created = harvester.harvest()
    # every page with annotations and its manifest, created once, pages before their manifest
    assert created == [("Create", page_of(v3, n), "AnnotationPage") for n in range(4)] + [
        ("Create", manifest_of(v3), "Manifest")
    ]
    assert harvester.harvest() == []  # nothing new: nothing seen again
    full = {n: document for n, document in harvester.pages.items() if "next" in document}
    assert full, "the first harvest should span more than one page"

    # the re-run: canvas 0 loses its horse and person, canvas 1 everything, canvas 3 a detection
    # changes its box; canvas 2 comes out the same; the second manifest is enriched for the first time
    run(store, v3, first, 0, SHA, lambda a: label(a) == "dog")
    run(store, v3, first, 1, SHA, lambda a: False)
    run(store, v3, first, 2, SHA, lambda a: True)
    zebra = next(a for a, _ in first if label(a) == "zebra")
    moved = copy.deepcopy(zebra)
    moved["target"]["selector"]["value"] = "xywh=151,60,70,80"
    store.replace_machine_annotations(manifest_key(v3.id), v3.canvases[3].id, SHA,
                                      [moved, *(a for a, m in first if m == SHA and label(a) == "bird")])
    run(store, v2, annotations[v2.id], 0, SHA, lambda a: True)

    changed = harvester.harvest()
    assert sorted(changed) == sorted([
        ("Update", page_of(v3, 0), "AnnotationPage"),
        ("Delete", page_of(v3, 1), "AnnotationPage"),
        ("Update", page_of(v3, 3), "AnnotationPage"),
        ("Update", manifest_of(v3), "Manifest"),
        ("Create", page_of(v2, 0), "AnnotationPage"),
        ("Create", manifest_of(v2), "Manifest"),
    ])
    # a page that was full is the same document now: the harvester could resume from it safely
    for n, document in full.items():
        assert discovery.page(store, BASE, n, SIZE) == document

    # a person annotates the emptied canvas: its page is published again
    store.create(manifest_key(v3.id), comment(v3, f"{BASE}{manifest_key(v3.id)}/annotations/note1"), "curator")
    assert harvester.harvest() == [
        ("Create", page_of(v3, 1), "AnnotationPage"),
        ("Update", manifest_of(v3), "Manifest"),
    ]


def test_pages_link_up_and_times_never_go_back(store, annotations, v3):
    for canvas in range(4):
        run(store, v3, annotations[v3.id], canvas, SHA, lambda a: True)
    discovery.sync(store, BASE)  # a harvester looked in between
    for canvas in range(4):
        run(store, v3, annotations[v3.id], canvas, SHA, lambda a: False)
    discovery.sync(store, BASE)
    top = discovery.collection(store, BASE, SIZE, rights="http://creativecommons.org/publicdomain/zero/1.0/")
    assert top["totalItems"] == 10  # 4 creates and the manifest's, 4 deletes and its update
    assert top["first"] == {"id": activity_page_url(BASE, 0), "type": "OrderedCollectionPage"}
    assert top["last"] == {"id": activity_page_url(BASE, 3), "type": "OrderedCollectionPage"}
    times = []
    for n in range(4):
        document = discovery.page(store, BASE, n, SIZE)
        assert document["startIndex"] == n * SIZE
        assert document["partOf"] == {"id": top["id"], "type": "OrderedCollection"}
        assert ("prev" in document) == (n > 0) and ("next" in document) == (n < 3)
        if n > 0:
            assert document["prev"]["id"] == activity_page_url(BASE, n - 1)
        times += [activity["endTime"] for activity in document["orderedItems"]]
    assert len(times) == 10 and times == sorted(times)
    assert all(t.endswith("Z") for t in times)
    with pytest.raises(NotFound) as caught:
        discovery.page(store, BASE, 4, SIZE)
    assert caught.value.where == activity_page_url(BASE, 4)
    with pytest.raises(NotFound):
        discovery.page(store, BASE, -1, SIZE)


def test_an_empty_stream_has_one_empty_page(store):
    discovery.sync(store, BASE)
    top = discovery.collection(store, BASE, SIZE)
    assert top["totalItems"] == 0 and top["last"]["id"] == activity_page_url(BASE, 0)
    document = discovery.page(store, BASE, 0, SIZE)
    assert document["orderedItems"] == [] and "next" not in document and "prev" not in document


def test_an_annotation_moved_to_another_canvas_updates_both_pages(store, annotations, v3):
    run(store, v3, annotations[v3.id], 1, SHA, lambda a: label(a) == "dog")
    harvester = Harvester(store)
    harvester.harvest()
    stored = store.canvas_annotations(manifest_key(v3.id), v3.canvases[1].id)[0]
    document = copy.deepcopy(stored.document)
    document["target"]["source"]["id"] = v3.canvases[2].id
    store.update(stored.id, document, stored.etag, "curator")
    assert sorted(harvester.harvest()) == sorted([
        ("Delete", page_of(v3, 1), "AnnotationPage"),
        ("Create", page_of(v3, 2), "AnnotationPage"),
        ("Update", manifest_of(v3), "Manifest"),
    ])


def test_changes_in_a_container_without_a_stored_manifest_make_no_activity(tmp_path, annotations, v3):
    with open_store(tmp_path / "bare.sqlite3") as store:
        run(store, v3, annotations[v3.id], 0, SHA, lambda a: True)
        discovery.sync(store, BASE)
        assert discovery.collection(store, BASE, SIZE)["totalItems"] == 0


def test_processes_syncing_at_once_write_each_activity_once(store, annotations, v3, v2):
    for parsed in (v3, v2):
        for canvas in range(4):
            run(store, parsed, annotations[parsed.id], canvas, SHA, lambda a: True)
    path = store.path
    errors = []

    def sync():
        try:
            with open_store(path) as own:  # a connection of its own, as another worker process has
                discovery.sync(own, BASE)
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    harvested = Harvester(store).harvest()
    objects = [object_id for _, object_id, _ in harvested]
    assert len(objects) == len(set(objects)) == 10  # 4 pages and a manifest, twice


# ---- the Change Discovery context ----------------------------------------------------------------------


def loader(conformance_dir):
    """Our offline loader, plus the Activity Streams context the Discovery context imports (pyld ships it)."""
    ours = document_loader(conformance_dir)

    def load(url, options=None):
        if url.rstrip("#") == AS_CONTEXT:
            document = json.loads(BUNDLED_CONTEXTS[AS_CONTEXT].read_text(encoding="utf-8"))
            return {"contextUrl": None, "documentUrl": url, "document": document}
        return ours(url, options)

    return load


def to_dataset(document: dict, conformance_dir) -> ox.Dataset:
    text = pyld.to_rdf(document, {"documentLoader": loader(conformance_dir), "format": "application/n-quads"})
    return ox.Dataset(ox.parse(text.encode("utf-8"), format=ox.RdfFormat.N_QUADS))


def one(dataset: ox.Dataset, subject, predicate: str):
    found = [q.object for q in dataset.quads_for_subject(subject) if q.predicate.value == predicate]
    assert len(found) == 1, (subject, predicate, found)
    return found[0]


def rdf_list(dataset: ox.Dataset, head) -> list:
    items = []
    nil = "http://www.w3.org/1999/02/22-rdf-syntax-ns#nil"
    while not (isinstance(head, ox.NamedNode) and head.value == nil):
        items.append(one(dataset, head, "http://www.w3.org/1999/02/22-rdf-syntax-ns#first"))
        head = one(dataset, head, "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest")
    return items


@pytest.mark.conformance
def test_collection_and_pages_mean_what_the_discovery_context_says(store, annotations, v3, conformance_dir):
    for canvas in range(4):
        run(store, v3, annotations[v3.id], canvas, SHA, lambda a: True)
    discovery.sync(store, BASE)
    run(store, v3, annotations[v3.id], 1, SHA, lambda a: False)
    licence = "http://creativecommons.org/publicdomain/zero/1.0/"
    discovery.sync(store, BASE)
    top = discovery.collection(store, BASE, SIZE, rights=licence)
    graph = to_dataset(top, conformance_dir)
    node = ox.NamedNode(top["id"])
    assert one(graph, node, RDF_TYPE.value) == ox.NamedNode(AS + "OrderedCollection")
    assert one(graph, node, AS + "totalItems") == ox.Literal("7", datatype=ox.NamedNode(XSD + "nonNegativeInteger"))
    assert one(graph, node, AS + "first") == ox.NamedNode(activity_page_url(BASE, 0))
    assert one(graph, node, AS + "last") == ox.NamedNode(activity_page_url(BASE, 2))
    assert one(graph, node, "http://purl.org/dc/terms/rights") == ox.NamedNode(licence)

    kinds = {"AnnotationPage": AS + "OrderedCollectionPage", "Manifest": "http://iiif.io/api/presentation/3#Manifest"}
    for n in range(3):
        document = discovery.page(store, BASE, n, SIZE)
        assert list(document)[0] == "@context" and document["@context"] == discovery.CONTEXT
        graph = to_dataset(document, conformance_dir)
        node = ox.NamedNode(document["id"])
        assert one(graph, node, RDF_TYPE.value) == ox.NamedNode(AS + "OrderedCollectionPage")
        assert one(graph, node, AS + "partOf") == ox.NamedNode(top["id"])
        start = ox.Literal(str(n * SIZE), datatype=ox.NamedNode(XSD + "nonNegativeInteger"))
        assert one(graph, node, AS + "startIndex") == start
        for link in ("prev", "next"):
            if link in document:
                assert one(graph, node, AS + link) == ox.NamedNode(document[link]["id"])
        activities = rdf_list(graph, one(graph, node, AS + "items"))
        assert len(activities) == len(document["orderedItems"])
        for activity, item in zip(activities, document["orderedItems"]):
            assert one(graph, activity, RDF_TYPE.value) == ox.NamedNode(AS + item["type"])
            target = one(graph, activity, AS + "object")
            assert target == ox.NamedNode(item["object"]["id"])
            assert one(graph, target, RDF_TYPE.value) == ox.NamedNode(kinds[item["object"]["type"]])
            assert one(graph, activity, AS + "endTime") == ox.Literal(
                item["endTime"], datatype=ox.NamedNode(XSD + "dateTime")
            )
