"""Annotations, IIIF pages, v2 lists and enriched manifests: valid W3C and IIIF, meaning what docs/terms.md says."""

from __future__ import annotations

import copy

import pytest
from conformance import (
    assert_iiif3,
    assert_w3c_annotation,
    assert_w3c_collection,
    assert_w3c_page,
    iiif3_errors,
    w3c_failures,
)
from factories import make_manifest
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import DCMITYPE, DCTERMS, RDF, XSD

from enricher import __version__
from enricher.annotate import (
    Generator,
    annotation_id,
    annotation_list,
    annotation_page,
    build_annotation,
    concept_value,
    enriched_manifest,
    manifest_key,
)
from enricher.detect import Detection
from enricher.errors import EnricherError, FetchError, RegionError
from enricher.jsonld import to_graph
from enricher.manifest import parse_manifest
from enricher.urls import container_url
from enricher.vocab import Concept, Vocabulary

pytestmark = pytest.mark.conformance

OA = Namespace("http://www.w3.org/ns/oa#")
AS = Namespace("http://www.w3.org/ns/activitystreams#")
ENRICHER = Namespace("https://w3id.org/enricher/ns#")
CNT = Namespace("http://www.w3.org/2011/content#")
BASE = "https://enricher.example.org/"
SHA = "0123456789abcdef" * 4
CREATED = "2024-05-01T12:00:00Z"
WIKIDATA_DOG = "http://www.wikidata.org/entity/Q144"
ICONCLASS_DOG = "https://iconclass.org/34B11"


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.load()


@pytest.fixture(params=[3, 2], ids=["v3", "v2"])
def manifest(request):
    document = make_manifest(request.param, [("a", 1000, 800), ("b", 500, 500)], "https://images.example.org/iiif")
    return parse_manifest(document, document.get("id") or document["@id"])


@pytest.fixture
def manifest3():
    document = make_manifest(3, [("a", 1000, 800), ("b", 500, 500)], "https://images.example.org/iiif")
    return parse_manifest(document, document["id"])


@pytest.fixture
def settings(config):
    return config(base_url=BASE)


GENERATOR = Generator(__version__, "yolo11n.pt", SHA)


def annotate(manifest, vocabulary, settings, box=(100.4, 50.2, 200.5, 120.0), label="dog", score=0.87654, canvas=0):
    return build_annotation(
        canvas=manifest.canvases[canvas],
        manifest=manifest,
        detection=Detection(label, score, box),
        mapping=vocabulary.lookup(label),
        generator=GENERATOR,
        created=CREATED,
        config=settings,
    )


def test_annotation_shape(manifest3, vocabulary, settings):
    anno = annotate(manifest3, vocabulary, settings)
    canvas = manifest3.canvases[0]
    assert anno["@context"] == ["http://www.w3.org/ns/anno.jsonld", "https://w3id.org/enricher/context.jsonld"]
    assert anno["motivation"] == "tagging"
    assert anno["confidence"] == 0.8765
    assert anno["rights"] == settings.licence
    assert anno["generator"] == {
        "type": "Software",
        "name": f"enricher {__version__} (yolo11n.pt)",
        "softwareVersion": __version__,
        "model": "yolo11n.pt",
        "modelSha256": SHA,
    }
    # floor of the corner, ceil of the far corner: the whole detection stays covered
    assert anno["target"] == {
        "type": "SpecificResource",
        "source": {"id": canvas.id, "type": "Canvas", "partOf": [{"id": manifest3.id, "type": "Manifest"}]},
        "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                     "value": "xywh=100,50,201,121"},
    }
    label, wikidata, iconclass = anno["body"]
    assert label == {
        "type": "TextualBody", "value": "dog", "language": "en", "format": "text/plain", "purpose": "tagging"
    }
    assert (wikidata["value"], wikidata["subject"]) == ("Wikidata Q144: dog", WIKIDATA_DOG)
    assert wikidata["purpose"] == iconclass["purpose"] == "classifying"
    assert (iconclass["value"], iconclass["subject"]) == ("Iconclass 34B11: dog", ICONCLASS_DOG)
    # Mirador 3/4 fail on a body without a value
    assert all(isinstance(body["value"], str) and body["value"] for body in anno["body"])


def test_labels_follow_the_language_setting(manifest3, vocabulary, settings):
    anno = annotate(manifest3, vocabulary, settings.replace(language="de"))
    assert [(b["value"], b["language"]) for b in anno["body"]] == [
        ("Hund", "de"), ("Wikidata Q144: Hund", "de"), ("Iconclass 34B11: Hund", "de")
    ]


def test_concept_values_name_scheme_notation_and_label():
    aat = Concept("http://vocab.getty.edu/aat/300250025", "other", "close", None, {"en": "dogs (animals)"})
    assert concept_value(aat, "dog", "en") == "vocab.getty.edu 300250025: dogs (animals)"
    assert concept_value(aat, "Hund", "de") == "vocab.getty.edu 300250025: Hund"  # no German label: the class's


@pytest.mark.parametrize("label", ["dog", "person", "an unmapped class"])
def test_annotation_passes_every_w3c_must(manifest, vocabulary, settings, conformance_dir, label):
    assert_w3c_annotation(annotate(manifest, vocabulary, settings, label=label), conformance_dir)


def test_box_is_clipped_to_the_canvas(manifest3, vocabulary, settings, conformance_dir):
    anno = annotate(manifest3, vocabulary, settings, box=(-20.5, 700.0, 1100.0, 200.0))
    assert anno["target"]["selector"]["value"] == "xywh=0,700,1000,100"
    canvas = manifest3.canvases[0]
    assert_iiif3(annotation_page(canvas, [anno], f"{BASE}m/pages/0.json"), conformance_dir,
                 {canvas.id: (canvas.width, canvas.height)})


def test_box_outside_the_canvas_is_refused(manifest3, vocabulary, settings):
    with pytest.raises(RegionError) as caught:
        annotate(manifest3, vocabulary, settings, box=(1200.0, 10.0, 50.0, 50.0))
    assert caught.value.where == manifest3.canvases[0].id


def test_score_outside_0_1_is_refused(manifest3, vocabulary, settings):
    with pytest.raises(EnricherError, match="not in 0..1"):
        annotate(manifest3, vocabulary, settings, score=1.5)


def test_ids_are_stable_across_runs(manifest3, vocabulary, settings):
    first = annotate(manifest3, vocabulary, settings)
    again = annotate(manifest3, vocabulary, settings, score=0.5)  # another run: other score, same detection
    assert first["id"] == again["id"]
    assert first["id"].startswith(container_url(BASE, manifest_key(manifest3.id)))
    assert annotate(manifest3, vocabulary, settings, box=(101.0, 50.0, 200.0, 120.0))["id"] != first["id"]
    assert annotate(manifest3, vocabulary, settings, label="cat")["id"] != first["id"]
    assert annotate(manifest3, vocabulary, settings, canvas=1, box=(1, 1, 5, 5))["id"] != annotate(
        manifest3, vocabulary, settings, canvas=0, box=(1, 1, 5, 5))["id"]
    canvas_id = manifest3.canvases[0].id
    assert annotation_id(container_url(BASE, manifest_key(manifest3.id)), canvas_id, SHA, "dog", (100, 50, 201, 121)) == first["id"]
    assert annotation_id(container_url(BASE, manifest_key(manifest3.id)), canvas_id, SHA, "dog", (100.2, 49.8, 201.0, 121.4)) == first["id"]
    assert annotation_id(container_url(BASE, manifest_key(manifest3.id)), canvas_id, "f" * 64, "dog", (100, 50, 201, 121)) != first["id"]


def test_page_passes_iiif3(manifest3, vocabulary, settings, conformance_dir):
    canvas = manifest3.canvases[0]
    annos = [annotate(manifest3, vocabulary, settings), annotate(manifest3, vocabulary, settings, label="cat")]
    page = annotation_page(canvas, annos, f"{BASE}m/pages/0.json")
    assert page["@context"][-1] == "http://iiif.io/api/presentation/3/context.json"
    assert [a["id"] for a in page["items"]] == [a["id"] for a in annos]
    assert all("@context" not in a for a in page["items"])
    assert all("@context" in a for a in annos)  # the standalone annotations are left alone
    assert_iiif3(page, conformance_dir, {canvas.id: (canvas.width, canvas.height)})
    for item in page["items"]:  # embedded, they stay W3C annotations once given the context back
        assert_w3c_annotation({"@context": annos[0]["@context"], **item}, conformance_dir)


def test_page_refuses_an_annotation_of_another_canvas(manifest3, vocabulary, settings):
    anno = annotate(manifest3, vocabulary, settings, canvas=1, box=(1, 1, 5, 5))
    with pytest.raises(EnricherError, match="targets"):
        annotation_page(manifest3.canvases[0], [anno], f"{BASE}m/pages/0.json")


def test_enriched_v3_manifest_passes_iiif3(manifest3, conformance_dir):
    first, second = manifest3.canvases
    manifest3.document["items"][1]["annotations"] = [{"id": "https://example.org/old-page", "type": "AnnotationPage"}]
    links = {c.id: (f"{BASE}m/pages/{c.index}.json", f"{BASE}m/lists/{c.index}.json") for c in (first, second)}
    enriched = enriched_manifest(manifest3, links, f"{BASE}m/manifest.json")
    assert_iiif3(enriched, conformance_dir)
    assert enriched["id"] == f"{BASE}m/manifest.json"
    assert enriched["seeAlso"][0]["id"] == manifest3.id
    assert enriched["items"][0]["annotations"] == [{"id": f"{BASE}m/pages/0.json", "type": "AnnotationPage"}]
    second_pages = [p["id"] for p in enriched["items"][1]["annotations"]]
    assert second_pages == ["https://example.org/old-page", f"{BASE}m/pages/1.json"]
    assert "annotations" not in manifest3.document["items"][0]  # the source is not touched
    assert enriched_manifest(manifest3, {})["id"] == manifest3.id
    again = parse_manifest(enriched, enriched["id"])  # enriching our own output adds nothing twice
    assert enriched_manifest(again, links, f"{BASE}m/manifest.json") == enriched


def test_enriched_v2_manifest_links_lists():
    document = make_manifest(2, [("a", 1000, 800), ("b", 500, 500)], "https://images.example.org/iiif")
    old = {"@id": "https://example.org/old", "@type": "sc:AnnotationList"}
    document["sequences"][0]["canvases"][0]["otherContent"] = [old]
    manifest = parse_manifest(document, document["@id"])
    links = {c.id: (f"{BASE}m/pages/{c.index}.json", f"{BASE}m/lists/{c.index}.json") for c in manifest.canvases}
    enriched = enriched_manifest(manifest, links, f"{BASE}m/manifest.json")
    first, second = enriched["sequences"][0]["canvases"]
    assert [c["@id"] for c in first["otherContent"]] == ["https://example.org/old", f"{BASE}m/lists/0.json"]
    assert second["otherContent"] == [{"@id": f"{BASE}m/lists/1.json", "@type": "sc:AnnotationList"}]
    assert enriched["@id"] == f"{BASE}m/manifest.json"
    assert enriched["seeAlso"] == [{"@id": manifest.id, "format": "application/ld+json",
                                    "profile": "http://iiif.io/api/presentation/2/context.json"}]


def test_v2_list_structure(manifest, vocabulary, settings, conformance_dir):
    canvas = manifest.canvases[0]
    anno = annotate(manifest, vocabulary, settings)
    listing = annotation_list(canvas, [anno], f"{BASE}m/lists/0.json")
    assert listing["@context"][0] == "http://iiif.io/api/presentation/2/context.json"
    assert (listing["@id"], listing["@type"]) == (f"{BASE}m/lists/0.json", "sc:AnnotationList")
    (item,) = listing["resources"]
    assert (item["@id"], item["@type"], item["motivation"]) == (anno["id"], "oa:Annotation", "oa:tagging")
    assert item["on"] == f"{canvas.id}#xywh=100,50,201,121"
    text, *tags = item["resource"]
    assert (text["@type"], text["chars"], text["language"]) == ("dctypes:Text", "dog", "en")
    assert "subject" not in text
    # every resource has chars (Mirador lists each as a tag); a concept is text whose subject it is
    assert [(t["@type"], t["language"], t["subject"]) for t in tags] == [
        ("dctypes:Text", "en", WIKIDATA_DOG), ("dctypes:Text", "en", ICONCLASS_DOG)]
    assert [t["chars"] for t in tags] == [body["value"] for body in anno["body"][1:]]
    graph = to_graph(listing, conformance_dir)
    node = URIRef(anno["id"])
    assert (node, OA.hasTarget, URIRef(item["on"])) in graph
    concepts = set(graph.query(
        "SELECT ?c ?chars WHERE { ?a oa:hasBody ?b . ?b a dctypes:Text ; cnt:chars ?chars ; dcterms:subject ?c }",
        initNs={"oa": OA, "dcterms": DCTERMS, "dctypes": DCMITYPE, "cnt": CNT}, initBindings={"a": node},
    ))
    assert {(str(c), str(chars)) for c, chars in concepts} == {
        (WIKIDATA_DOG, tags[0]["chars"]), (ICONCLASS_DOG, tags[1]["chars"])}
    assert len(list(graph.objects(node, OA.hasBody))) == 3
    assert (node, ENRICHER.confidence, Literal(0.8765, datatype=XSD.double)) in graph


def _selector_value(graph, anno_id):
    (value,) = graph.query(
        "SELECT ?v WHERE { ?a oa:hasTarget/(oa:hasSelector|oa:selector)/rdf:value ?v }",
        initNs={"oa": OA, "rdf": RDF}, initBindings={"a": URIRef(anno_id)},
    )
    return str(value[0])


def test_jsonld_gives_the_documented_triples(manifest3, vocabulary, settings, conformance_dir):
    anno = annotate(manifest3, vocabulary, settings)
    graph = to_graph(anno, conformance_dir)
    node, canvas = URIRef(anno["id"]), URIRef(manifest3.canvases[0].id)
    assert (node, RDF.type, OA.Annotation) in graph
    assert (node, OA.motivatedBy, OA.tagging) in graph
    assert (node, ENRICHER.confidence, Literal("8.765E-1", datatype=XSD.double)) in graph
    assert (node, DCTERMS.created, Literal(CREATED, datatype=XSD.dateTime)) in graph
    assert (node, DCTERMS.rights, URIRef(settings.licence)) in graph
    assert len(list(graph.objects(node, OA.hasBody))) == 3
    concepts = set(graph.query(
        "SELECT ?c WHERE { ?a oa:hasBody ?b . ?b oa:hasPurpose oa:classifying ; dcterms:subject ?c }",
        initNs={"oa": OA, "dcterms": DCTERMS}, initBindings={"a": node},
    ))
    assert concepts == {(URIRef(WIKIDATA_DOG),), (URIRef(ICONCLASS_DOG),)}
    (target,) = graph.objects(node, OA.hasTarget)
    assert (target, OA.hasSource, canvas) in graph
    assert (canvas, DCTERMS.isPartOf, URIRef(manifest3.id)) in graph
    assert _selector_value(graph, anno["id"]) == "xywh=100,50,201,121"
    (generator,) = graph.objects(node, AS.generator)
    assert (generator, RDF.type, AS.Application) in graph
    assert (generator, ENRICHER.modelSha256, Literal(SHA)) in graph
    assert (generator, ENRICHER.model, Literal("yolo11n.pt")) in graph
    # the same annotation inside an IIIF page means the same (the IIIF context says oa:selector)
    page = to_graph(annotation_page(manifest3.canvases[0], [anno], f"{BASE}m/pages/0.json"), conformance_dir)
    assert (node, ENRICHER.confidence, Literal("8.765E-1", datatype=XSD.double)) in page
    assert (None, ENRICHER.modelSha256, Literal(SHA)) in page
    assert len(list(page.objects(node, OA.hasBody))) == 3
    assert (None, RDF.type, OA.TextualBody) in page
    assert (None, DCTERMS.subject, URIRef(WIKIDATA_DOG)) in page
    assert _selector_value(page, anno["id"]) == "xywh=100,50,201,121"


def test_offline_loader_refuses_unknown_contexts(conformance_dir, tmp_path):
    with pytest.raises(FetchError) as caught:
        to_graph({"@context": "https://example.org/context.jsonld", "@id": "https://example.org/x"}, conformance_dir)
    assert caught.value.where == "https://example.org/context.jsonld"


def test_our_context_works_without_the_conformance_folder():
    graph = to_graph({"@context": "https://w3id.org/enricher/context.jsonld", "@id": "https://example.org/a",
                      "confidence": 1}, None)
    assert (URIRef("https://example.org/a"), ENRICHER.confidence, Literal("1.0E0", datatype=XSD.double)) in graph


def _drop_target(anno):
    del anno["target"]


def _value_on_concept_source(anno):
    anno["body"][1]["source"] = anno["body"][1].pop("subject")  # the shape Mirador wants, W3C forbids


def _bad_created(anno):
    anno["created"] = "1 May 2024"


def _selector_without_value(anno):
    del anno["target"]["selector"]["value"]


def _wrong_context(anno):
    anno["@context"] = "http://iiif.io/api/presentation/3/context.json"


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (_drop_target, "3.1-targetKeyFound"),
        (_value_on_concept_source, "4-bodySpecificResourceNoValue"),
        (_bad_created, "3.3.1-annotationCreatedValidated"),
        (_selector_without_value, "4.2-fragmentCssXPathSelectorValid"),
        (_wrong_context, "3.1-annotationContextValidated"),
    ],
)
def test_broken_annotations_fail_the_w3c_assertion(manifest3, vocabulary, settings, conformance_dir, breaks, expected):
    anno = annotate(manifest3, vocabulary, settings)
    breaks(anno)
    assert expected in w3c_failures(anno, conformance_dir)
    with pytest.raises(AssertionError, match=expected):
        assert_w3c_annotation(anno, conformance_dir)


def _set_selector(value):
    def breaks(page):
        page["items"][0]["target"]["selector"]["value"] = value
    return breaks


def _extra_page_key(page):
    page["startIndex"] = 0


def _iiif_context_first(page):
    page["@context"] = list(reversed(page["@context"]))


def _painting(page):
    page["items"][0]["motivation"] = "painting"


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (_set_selector("xywh=pixel:100,50,201,121"), "whole pixels"),
        (_set_selector("xywh=100.5,50,201,121"), "whole pixels"),
        (_set_selector("xywh=900,50,201,121"), "exceeds the 1000x800 canvas"),
        (_set_selector("xywh=100,50,0,121"), "empty region"),
        (_extra_page_key, "Additional properties are not allowed"),
        (_iiif_context_first, "must be last"),
    ],
)
def test_broken_pages_fail_iiif3(manifest3, vocabulary, settings, conformance_dir, breaks, expected):
    canvas = manifest3.canvases[0]
    page = annotation_page(canvas, [annotate(manifest3, vocabulary, settings)], f"{BASE}m/pages/0.json")
    sizes = {canvas.id: (canvas.width, canvas.height)}
    assert iiif3_errors(page, conformance_dir, sizes) == []
    breaks(page)
    assert any(expected in error for error in iiif3_errors(page, conformance_dir, sizes))
    with pytest.raises(AssertionError, match=expected):
        assert_iiif3(page, conformance_dir, sizes)


def test_painting_in_canvas_annotations_fails_iiif3(manifest3, vocabulary, settings, conformance_dir):
    canvas = manifest3.canvases[0]
    page = annotation_page(canvas, [annotate(manifest3, vocabulary, settings)], f"{BASE}m/pages/0.json")
    enriched = enriched_manifest(manifest3, {})
    enriched["items"][0]["annotations"] = [{k: v for k, v in page.items() if k != "@context"}]
    assert_iiif3(enriched, conformance_dir)
    _painting(enriched["items"][0]["annotations"][0])
    assert any("painting annotation in canvas annotations" in e for e in iiif3_errors(enriched, conformance_dir))


def test_w3c_page_and_collection_harness(manifest3, vocabulary, settings, conformance_dir):
    anno = annotate(manifest3, vocabulary, settings)
    page = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "id": f"{BASE}m/w3c/page1",
        "type": "AnnotationPage",
        "partOf": {"id": f"{BASE}m/w3c", "total": 1},
        "startIndex": 0,
        "items": [{k: v for k, v in anno.items() if k != "@context"}],
    }
    assert_w3c_page(page, conformance_dir)
    broken = copy.deepcopy(page)
    broken["partOf"] = f"{BASE}m/w3c"  # a string, not an object
    with pytest.raises(AssertionError, match="5.2-page"):
        assert_w3c_page(broken, conformance_dir)
    collection = {"@context": "http://www.w3.org/ns/anno.jsonld", "id": f"{BASE}m/w3c", "type": "AnnotationCollection",
                  "label": "Detections", "total": 1, "first": page["id"], "last": page["id"]}
    assert_w3c_collection(collection, conformance_dir)
    with pytest.raises(AssertionError, match="5.1-collectionTypeValidated"):
        assert_w3c_collection({**collection, "type": "Collection"}, conformance_dir)
