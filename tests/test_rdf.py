"""The RDF of annotations without pyld equals pyld's, and every registered serialization round-trips."""

from __future__ import annotations

import copy
import json

import pyoxigraph as ox
import pytest
from pyld import jsonld as pyld
from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.compare import graph_diff, isomorphic, to_isomorphic
from real_annotations import comment, corrected, machine_annotations, manifest

from enricher import rdf
from enricher.errors import InputError, NotAcceptable
from enricher.jsonld import document_loader, to_graph
from enricher.vocab import Vocabulary

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def to_rdflib(terms, graph=None):
    """Copy pyoxigraph triples or quads into an rdflib Graph (blank nodes kept apart per call)."""
    graph = Graph() if graph is None else graph
    blanks: dict[str, BNode] = {}

    def term(node):
        if isinstance(node, ox.NamedNode):
            return URIRef(node.value)
        if isinstance(node, ox.BlankNode):
            return blanks.setdefault(node.value, BNode())
        if node.language:
            return Literal(node.value, lang=node.language)
        return Literal(node.value, datatype=None if node.datatype.value == XSD_STRING else URIRef(node.datatype.value))

    for item in terms:
        graph.add((term(item.subject), term(item.predicate), term(item.object)))
    return graph


def pyld_graph(annotation: dict, conformance_dir) -> Graph:
    """The annotation's graph as pyld reads it (stored documents lack the @context the web adds)."""
    return to_graph({"@context": rdf.ANNOTATION_CONTEXT, **annotation}, conformance_dir)


def assert_isomorphic(ours: Graph, expected: Graph) -> None:
    if not isomorphic(ours, expected):
        _, only_ours, only_expected = graph_diff(to_isomorphic(ours), to_isomorphic(expected))
        pytest.fail(
            f"graphs differ\nonly ours:\n{only_ours.serialize(format='nt')}\nonly pyld:\n"
            f"{only_expected.serialize(format='nt')}"
        )


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def machine(config, parsed):
    return machine_annotations(config(base_url="https://enricher.example.org/"), Vocabulary.load(), parsed)


@pytest.fixture(scope="module")
def every_shape(machine, parsed):
    """Each machine annotation, two corrected by a person, and a person's comment."""
    container = machine[0]["id"].rsplit("/", 1)[0] + "/"
    return machine + [corrected(machine[0]), corrected(machine[4], "anna")] + [comment(parsed, container + "c0ffee")]


def test_the_direct_reader_takes_every_annotation_we_store(every_shape):
    for annotation in every_shape:
        assert rdf._fast_triples(annotation)  # raises _Unknown if it would hand over to pyld


def test_direct_rdf_is_isomorphic_to_pyld(every_shape, conformance_dir):
    for annotation in every_shape:
        ours = to_rdflib(rdf.annotation_quads(annotation, graph=None))
        assert len(ours) > 10
        assert_isomorphic(ours, pyld_graph(annotation, conformance_dir))


def test_stored_documents_without_context_read_the_same(machine, conformance_dir):
    stored = {k: v for k, v in machine[1].items() if k != "@context"}
    assert_isomorphic(to_rdflib(rdf.annotation_quads(stored, graph=None)), pyld_graph(machine[1], conformance_dir))


def test_confidence_and_dates_are_typed_as_json_ld_types_them(machine):
    quads = rdf.annotation_quads(machine[6], graph=None)  # score 1.0
    values = {q.predicate.value.rsplit("#", 1)[-1].rsplit("/", 1)[-1]: q.object for q in quads}
    assert values["confidence"] == ox.Literal("1.0E0", datatype=ox.NamedNode(rdf.XSD + "double"))
    assert values["created"] == ox.Literal("2024-05-01T12:00:00Z", datatype=ox.NamedNode(rdf.XSD + "dateTime"))


def _with(annotation: dict, path: str, value) -> dict:
    changed = copy.deepcopy(annotation)
    *parents, last = path.split("/")
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return changed


# Other spellings of the same shape that the direct reader reads itself, as pyld does.
KNOWN = {
    "manifest without type": ("target/source/partOf", [{"id": "https://images.example.org/iiif/m.json"}]),
    "one body, not a list": ("body", {"type": "TextualBody", "value": "dog", "purpose": "tagging"}),
    "motivations listed": ("motivation", ["tagging", "classifying"]),
    "types listed": ("type", ["Annotation"]),
    "target as a fragment IRI": ("target", "https://images.example.org/iiif/manifest-v3/canvas/0#xywh=1,2,3,4"),
    "agent with an id": ("generator/id", "https://w3id.org/enricher/software"),
    "null dropped": ("rights", None),
    "no bodies": ("body", []),
    "integer confidence": ("confidence", 1),
    "tab and control characters": ("body/0/value", "tab\there\x01 \u00e9\U0001f415"),
}


@pytest.mark.parametrize("case", KNOWN.values(), ids=KNOWN.keys())
def test_other_spellings_of_our_shape_read_as_pyld_reads_them(machine, conformance_dir, case):
    annotation = _with(machine[0], *case)
    assert rdf._fast_triples(annotation)
    assert_isomorphic(to_rdflib(rdf.annotation_quads(annotation, graph=None)), pyld_graph(annotation, conformance_dir))


# Shapes the direct reader must not guess at: pyld reads them, and the result must be pyld's.
UNKNOWN = {
    "motivation without a context term": ("motivation", "assessing"),
    "compact IRI": ("motivation", "oa:commenting"),
    "compact IRI as id": ("rights", "dcterms:license"),
    "key outside our shape": ("label", "a label"),
    "value object": ("created", {"@value": "2024-05-01", "@type": "http://www.w3.org/2001/XMLSchema#date"}),
    "relative body id": ("body/0/id", "bodies/1"),
    "confidence as text": ("confidence", "0.5"),
    "number as a text value": ("body/0/value", 42),
    "language map": ("generator/name", {"en": "enricher"}),
    "unknown type": ("target/selector/type", "SvgSelectorish"),
    "blank node id": ("generator/id", "_:agent"),
    "IRI with a space (JSON-LD drops it)": ("rights", "http://example.org/with space"),
}


@pytest.mark.parametrize("case", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_what_the_reader_does_not_know_goes_through_pyld(machine, conformance_dir, case):
    annotation = _with(machine[0], *case)
    with pytest.raises(rdf._Unknown):
        rdf._fast_triples(annotation)
    assert_isomorphic(to_rdflib(rdf.annotation_quads(annotation, graph=None)), pyld_graph(annotation, conformance_dir))


def test_blank_nodes_are_new_in_every_read(machine, conformance_dir):
    for annotation in (machine[0], _with(machine[0], "label", "pyld path")):
        once = rdf.annotation_quads(annotation)
        twice = rdf.annotation_quads(annotation)
        blanks = {q.subject for q in once + twice if isinstance(q.subject, ox.BlankNode)}
        assert len(blanks) == 2 * len({q.subject for q in once if isinstance(q.subject, ox.BlankNode)}) > 0


def test_each_annotation_lands_in_the_graph_named_by_its_id(machine):
    quads = rdf.annotation_quads(machine[2])
    assert {q.graph_name for q in quads} == {ox.NamedNode(machine[2]["id"])}
    pyld_quads = rdf.annotation_quads(_with(machine[2], "label", "x"))
    assert {q.graph_name for q in pyld_quads} == {ox.NamedNode(machine[2]["id"])}
    assert {q.graph_name for q in rdf.annotation_quads(machine[2], graph=None)} == {ox.DefaultGraph()}


def test_bad_annotations_are_named_in_the_error(machine):
    with pytest.raises(InputError, match="absolute IRI as id"):
        rdf.annotation_quads({k: v for k, v in machine[0].items() if k != "id"})
    with pytest.raises(InputError, match="JSON object"):
        rdf.annotation_quads(["not", "an", "annotation"])
    for iri in ("http://ex[ample.org/", "http://example.org/%zz"):  # JSON-LD keeps them, RDF does not
        with pytest.raises(InputError, match="not valid RDF: .*Invalid IRI") as caught:
            rdf.annotation_quads(_with(machine[0], "rights", iri))
        assert caught.value.where == machine[0]["id"]


# ---- the serialization registry ----------------------------------------------------------------------


def canonical(triples) -> ox.Dataset:
    """Triples (rdflib or pyoxigraph) in the default graph, blank nodes renamed by RDFC-1.0: two
    graphs are isomorphic exactly when these are equal (fast where rdflib's check is slow on the
    many look-alike blank nodes of a whole container)."""

    def term(node):
        if isinstance(node, ox.NamedNode | ox.BlankNode | ox.Literal):
            return node
        if isinstance(node, URIRef):
            return ox.NamedNode(str(node))
        if isinstance(node, BNode):
            return ox.BlankNode(str(node))
        if node.language:
            return ox.Literal(str(node), language=node.language)
        return ox.Literal(str(node), datatype=ox.NamedNode(str(node.datatype or XSD_STRING)))

    dataset = ox.Dataset(ox.Quad(term(t[0]), term(t[1]), term(t[2])) for t in (
        (q.subject, q.predicate, q.object) if isinstance(q, ox.Quad | ox.Triple) else q for q in triples
    ))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return dataset


def triples_of(dataset: Dataset, name: str | None = None) -> Graph:
    """The triples of one graph of DATASET, or of all its graphs merged."""
    graph = Graph()
    for s, p, o, g in dataset.quads((None, None, None, URIRef(name) if name else None)):
        graph.add((s, p, o))
    return graph


def parse_back(fmt: rdf.Format, data: bytes) -> Dataset:
    """Read DATA with an implementation other than the writer's: rdflib, or pyld for JSON-LD."""
    dataset = Dataset()
    if fmt.name == "jsonld":
        nquads = pyld.to_rdf(json.loads(data), {"format": "application/n-quads", "documentLoader": document_loader(None)})
        dataset.parse(data=nquads, format="nquads")
    else:
        dataset.parse(data=data, format={"rdfxml": "xml"}.get(fmt.name, fmt.name))
    return dataset


@pytest.fixture(scope="module")
def quads(every_shape):
    return [quad for annotation in every_shape for quad in rdf.annotation_quads(annotation)]


@pytest.mark.parametrize("fmt", rdf.formats(), ids=lambda f: f.name)
def test_every_format_round_trips_to_an_isomorphic_graph(fmt, quads):
    data = fmt.serialize(quads)
    assert isinstance(data, bytes) and data
    back = parse_back(fmt, data)
    # every triple, whichever graph it came back in (both sides through rdflib, which normalises literals)
    assert canonical(triples_of(back)) == canonical(to_rdflib(quads))
    if fmt.dataset:
        names = {q.graph_name.value for q in quads}
        assert {str(g) for *_, g in back.quads((None, None, None, None))} == names
        for name in names:
            expected = to_rdflib([q for q in quads if q.graph_name.value == name])
            assert_isomorphic(triples_of(back, name), expected)
    # and pyoxigraph reads back what it wrote, as the index would
    assert canonical(ox.parse(data, format=ox.RdfFormat.from_media_type(fmt.media_type))) == canonical(quads)


@pytest.mark.parametrize("fmt", rdf.formats(), ids=lambda f: f.name)
def test_every_format_writes_to_a_stream(fmt, quads, tmp_path):
    path = tmp_path / f"dump.{fmt.extension}"
    with path.open("wb") as output:
        assert fmt.serialize(quads, output) is None
    assert path.read_bytes() == fmt.serialize(quads)


def test_turtle_uses_our_prefixes(quads):
    text = rdf.get("turtle").serialize(quads).decode()
    assert "@prefix oa: <http://www.w3.org/ns/oa#>" in text and "oa:hasBody" in text


@pytest.mark.parametrize("name", ["turtle", "ttl", "text/turtle", "application/x-turtle", " Turtle "])
def test_formats_are_found_by_name_extension_or_media_type(name):
    assert rdf.get(name).name == "turtle"


def test_an_unknown_format_lists_the_known_ones():
    with pytest.raises(NotAcceptable, match="turtle, jsonld, ntriples, nquads, trig, rdfxml"):
        rdf.get("n3")


NEGOTIATION = [
    (None, None, "turtle"),
    ("", None, "turtle"),
    ("*/*", None, "turtle"),
    ("application/ld+json", None, "jsonld"),
    ('application/ld+json;profile="http://www.w3.org/ns/anno.jsonld"', None, "jsonld"),
    ("application/json", None, "jsonld"),
    ("text/html, application/rdf+xml;q=0.9, */*;q=0.8", None, "rdfxml"),
    ("application/n-triples;q=0.5, text/turtle;q=0.4", None, "ntriples"),
    ("text/*", None, "turtle"),
    ("text/turtle;q=0, */*;q=0.1", None, "jsonld"),
    ("application/n-quads", "ttl", "turtle"),
    (None, "application/trig", "trig"),
]


@pytest.mark.parametrize("accept, param, expected", NEGOTIATION)
def test_content_negotiation(accept, param, expected):
    assert rdf.choose(accept, param).name == expected


def test_offers_limit_the_choice():
    assert rdf.choose("application/n-quads, */*;q=0.1", offers=["jsonld", "turtle"]).name == "jsonld"
    with pytest.raises(NotAcceptable, match=r"jsonld \(application/ld\+json\), turtle \(text/turtle\)") as caught:
        rdf.choose("application/n-quads", offers=["jsonld", "turtle"], where="http://x/annotations/1")
    assert caught.value.where == "http://x/annotations/1"
    with pytest.raises(NotAcceptable, match="format=nquads"):
        rdf.choose(None, "nquads", offers=["jsonld", "turtle"])


def test_nothing_acceptable_is_refused():
    with pytest.raises(NotAcceptable, match="Accept: image/png"):
        rdf.choose("image/png")


@pytest.mark.parametrize(
    "accept, param, expected",
    [
        (None, None, "json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, "json"),
        ("application/sparql-results+xml", None, "xml"),
        ("text/csv", None, "csv"),
        ("text/tab-separated-values", None, "tsv"),
        ("application/json", None, "json"),
        ("text/csv", "tsv", "tsv"),
        (None, "application/sparql-results+xml", "xml"),
    ],
)
def test_results_negotiation(accept, param, expected):
    assert rdf.choose_results(accept, param).name == expected


def test_unknown_results_formats_are_refused():
    with pytest.raises(NotAcceptable, match="json .*xml .*csv .*tsv"):
        rdf.choose_results("text/turtle")
    with pytest.raises(NotAcceptable, match="format=yaml"):
        rdf.choose_results(None, "yaml")
