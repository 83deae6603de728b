"""The SHACL shapes in shapes/: real annotations and pages conform, and each broken one is reported
by the rule it breaks (source shape and path), with nothing else reported."""

from __future__ import annotations

import copy

import pytest
from pyshacl import validate
from rdflib import Graph, Namespace, URIRef
from rdflib.collection import Collection
from real_annotations import (
    OTHER_SHA,
    comment,
    corrected,
    machine_annotations,
    manifest,
)

from enricher import rdf
from enricher.annotate import annotation_page
from enricher.datafiles import ANNOTATION_SHAPES
from enricher.jsonld import to_graph
from enricher.vocab import Vocabulary

SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES = Namespace("https://w3id.org/enricher/shapes#")
SHAPES_FILE = ANNOTATION_SHAPES
NAMES = {rdf.OA: "oa:", rdf.AS: "as:", rdf.DCTERMS: "dcterms:", rdf.DC: "dc:", rdf.RDF: "rdf:",
         rdf.ENRICHER_NS: "enricher:", "https://schema.org/": "schema:"}


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES_FILE)


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def machine(config, parsed):
    return machine_annotations(config(base_url="https://enricher.example.org/"), Vocabulary.load(), parsed)


def graph_of(*annotations: dict) -> Graph:
    """The RDF of ANNOTATIONS (through the index's reader, which test_rdf proves equal to pyld's)."""
    graph = Graph()
    for annotation in annotations:
        graph.parse(data=rdf.annotation_nquads(annotation, None), format="nt")
    return graph


def _name(term) -> str:
    for namespace, prefix in NAMES.items():
        if isinstance(term, URIRef) and str(term).startswith(namespace):
            return prefix + str(term)[len(namespace):]
    return str(term)


def path_of(report: Graph, path) -> str | None:
    """A result path as text: ``oa:hasBody``, or ``oa:hasSelector|oa:selector`` for an alternative."""
    if path is None or isinstance(path, URIRef):
        return None if path is None else _name(path)
    alternatives = report.value(path, SH.alternativePath)
    return "|".join(_name(p) for p in Collection(report, alternatives))


def violations(data: Graph, shapes: Graph) -> set[tuple[str, str | None]]:
    """Validate DATA; return each result as (source shape's local name, path)."""
    conforms, report, text = validate(data, shacl_graph=shapes, inference="none")
    results = {
        (str(report.value(r, SH.sourceShape)).removeprefix(str(SHAPES)), path_of(report, report.value(r, SH.resultPath)))
        for r in report.subjects(SH.resultSeverity, SH.Violation)
    }
    assert conforms == (not results), text
    return results


def test_the_shapes_file_is_valid_shacl(shapes):
    # the SHACL-SHACL shapes ship with pyshacl: validating our shapes with them checks their syntax
    conforms, _, text = validate(shapes, shacl_graph=None, meta_shacl=True, inference="none")
    assert conforms, text
    assert (SHAPES.Annotation, SH.targetClass, URIRef(rdf.OA + "Annotation")) in shapes


def test_every_real_annotation_conforms(machine, parsed, shapes):
    container = machine[0]["id"].rsplit("/", 1)[0] + "/"
    assert violations(graph_of(*machine, comment(parsed, container + "c0ffee")), shapes) == set()
    assert violations(graph_of(corrected(machine[0])), shapes) == set()  # replaces machine[0]: alone


def test_the_rdf_pyld_makes_conforms_too(machine, shapes, conformance_dir):
    assert violations(to_graph(machine[0], conformance_dir), shapes) == set()


def test_a_real_page_conforms(machine, parsed, shapes, conformance_dir):
    canvas = parsed.canvases[0]
    on_canvas = [a for a in machine if a["target"]["source"]["id"] == canvas.id]
    page = annotation_page(canvas, on_canvas, "https://enricher.example.org/k/pages/0.json")
    assert violations(to_graph(page, conformance_dir), shapes) == set()


def test_a_page_is_checked_annotation_by_annotation(machine, parsed, shapes, conformance_dir):
    canvas = parsed.canvases[0]
    broken = copy.deepcopy(machine[1])
    broken["target"]["selector"]["value"] = "xywh=pixel:1,2,3,4"
    page = annotation_page(canvas, [machine[0], broken], "https://enricher.example.org/k/pages/0.json")
    # the IIIF context names the selector oa:selector; the shapes check it all the same
    assert violations(to_graph(page, conformance_dir), shapes) == {("selector-value", "rdf:value")}
    page["items"].append({"id": "https://enricher.example.org/k/not-an-annotation", "type": "TextualBody", "value": "x"})
    assert ("page-item", None) in {(shape, None) for shape, _ in violations(to_graph(page, conformance_dir), shapes)}


def _edit(annotation: dict, path: str, value=..., *, delete: bool = False) -> dict:
    """A copy of ANNOTATION with the value at PATH ("body/1/subject") replaced, or deleted."""
    changed = copy.deepcopy(annotation)
    *parents, last = path.split("/")
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if delete:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return changed


CANVAS = "https://images.example.org/iiif/manifest-v3/canvas/0"
# name: (change to machine annotation 0 (dog: label, Wikidata, Iconclass bodies), expected results)
BROKEN = {
    "confidence above 1": (lambda a: _edit(a, "confidence", 1.5), {("annotation-confidence", "enricher:confidence")}),
    "confidence below 0": (lambda a: _edit(a, "confidence", -0.01), {("annotation-confidence", "enricher:confidence")}),
    "confidence as text": (
        lambda a: _edit(a, "confidence", {"@value": "0.9"}), {("annotation-confidence", "enricher:confidence")}
    ),
    "missing confidence": (lambda a: _edit(a, "confidence", delete=True), {("machine-confidence", "enricher:confidence")}),
    "missing selector": (
        lambda a: _edit(a, "target/selector", delete=True), {("target-selector", "oa:hasSelector|oa:selector")}
    ),
    "pixel: unit in the selector": (
        lambda a: _edit(a, "target/selector/value", "xywh=pixel:100,50,201,121"), {("selector-value", "rdf:value")}
    ),
    "empty box": (lambda a: _edit(a, "target/selector/value", "xywh=100,50,0,121"), {("selector-value", "rdf:value")}),
    "percent box": (
        lambda a: _edit(a, "target/selector/value", "xywh=percent:1,2,3,4"), {("selector-value", "rdf:value")}
    ),
    "selector of another kind": (
        lambda a: _edit(a, "target/selector/type", "SvgSelector"), {("Xywh", None)}
    ),
    "selector without conformsTo": (
        lambda a: _edit(a, "target/selector/conformsTo", delete=True), {("selector-conforms", "dcterms:conformsTo")}
    ),
    "two targets": (
        lambda a: _edit(a, "target", [a["target"], {**a["target"], "selector": {**a["target"]["selector"]}}]),
        {("annotation-target", "oa:hasTarget")},
    ),
    "target without source": (lambda a: _edit(a, "target/source", delete=True), {("target-source", "oa:hasSource")}),
    "source not typed Canvas": (  # and without the type, partOf is as:partOf, not dcterms:isPartOf
        lambda a: _edit(a, "target/source/type", delete=True),
        {("target-source", "oa:hasSource"), ("canvas-manifest", "dcterms:isPartOf")},
    ),
    "canvas without its manifest": (
        lambda a: _edit(a, "target/source/partOf", delete=True), {("canvas-manifest", "dcterms:isPartOf")}
    ),
    "target is the whole canvas IRI": (
        lambda a: _edit(a, "target", CANVAS), {("Region", None), ("target-selector", "oa:hasSelector|oa:selector"),
                                               ("target-source", "oa:hasSource")},
    ),
    "missing generator": (
        lambda a: _edit(a, "generator", delete=True),
        {("machine-generator", "as:generator"), ("annotation-provenance", "as:generator|dcterms:creator")},
    ),
    "generator without model SHA-256": (
        lambda a: _edit(a, "generator/modelSha256", delete=True), {("generator-sha256", "enricher:modelSha256")}
    ),
    "upper-case SHA-256": (
        lambda a: _edit(a, "generator/modelSha256", OTHER_SHA.upper()), {("generator-sha256", "enricher:modelSha256")}
    ),
    "short SHA-256": (lambda a: _edit(a, "generator/modelSha256", "abc123"), {("generator-sha256", "enricher:modelSha256")}),
    "generator without model": (lambda a: _edit(a, "generator/model", delete=True), {("generator-model", "enricher:model")}),
    "generator is a person": (lambda a: _edit(a, "generator/type", "Person"), {("Generator", None)}),
    "two generators": (
        lambda a: _edit(a, "generator", [a["generator"], {**a["generator"], "model": "other.pt"}]),
        {("annotation-generator", "as:generator")},
    ),
    "non-IRI subject": (lambda a: _edit(a, "body/1/subject", {"@value": "Q144"}), {("body-subject", "dcterms:subject")}),
    "Wikidata page instead of entity": (
        lambda a: _edit(a, "body/1/subject", "https://www.wikidata.org/wiki/Q144"), {("body-subject", "dcterms:subject")}
    ),
    "Iconclass over http": (
        lambda a: _edit(a, "body/2/subject", "http://iconclass.org/34B11"), {("body-subject", "dcterms:subject")}
    ),
    "classifying body without concept": (lambda a: _edit(a, "body/2/subject", delete=True), {("Body", None)}),
    "body without value": (lambda a: _edit(a, "body/1/value", delete=True), {("body-value", "rdf:value")}),
    "empty value": (lambda a: _edit(a, "body/1/value", ""), {("body-value", "rdf:value")}),
    "body of another type": (lambda a: _edit(a, "body/1/type", "SpecificResource"), {("body-type", "rdf:type")}),
    "bad language tag": (lambda a: _edit(a, "body/1/language", "english language"), {("body-language", "dc:language")}),
    "label without language": (
        lambda a: _edit(a, "body/0/language", delete=True), {("machine-label", "oa:hasBody")}
    ),
    "no bodies": (lambda a: _edit(a, "body", []), {("machine-label", "oa:hasBody")}),
    "machine comment": (lambda a: _edit(a, "motivation", "commenting"), {("machine-motivation", "oa:motivatedBy")}),
    "motivation outside the W3C list": (
        lambda a: _edit(a, "motivation", "https://example.org/guessing"),
        {("annotation-motivation", "oa:motivatedBy"), ("machine-motivation", "oa:motivatedBy")},
    ),
    "missing created": (lambda a: _edit(a, "created", delete=True), {("annotation-created", "dcterms:created")}),
    "created is no dateTime": (lambda a: _edit(a, "created", "yesterday"), {("annotation-created", "dcterms:created")}),
    "rights as text": (lambda a: _edit(a, "rights", {"@value": "CC0"}), {("annotation-rights", "dcterms:rights")}),
}


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_each_broken_annotation_is_reported_by_the_rule_it_breaks(machine, shapes, case):
    change, expected = case
    assert violations(graph_of(change(machine[0])), shapes) == expected


def test_a_person_s_annotation_needs_a_creator(machine, parsed, shapes):
    anonymous = _edit(comment(parsed, machine[0]["id"] + "-note"), "creator", delete=True)
    assert violations(graph_of(anonymous), shapes) == {("annotation-provenance", "as:generator|dcterms:creator")}
    robot = _edit(comment(parsed, machine[0]["id"] + "-note"), "creator/type", "Annotation")
    reported = violations(graph_of(robot), shapes)
    assert ("Agent", None) in reported


def test_reports_name_the_offending_node(machine, shapes):
    broken = _edit(machine[3], "confidence", 2)
    _, report, _ = validate(graph_of(machine[0], broken), shacl_graph=shapes, inference="none")
    focus = {str(node) for node in report.objects(None, SH.focusNode)}
    assert focus == {broken["id"]}
