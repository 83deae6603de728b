"""RDF of what we publish: annotations as quads without a JSON-LD processor, and the serializations
(a name -> format registry) chosen by content negotiation.

``annotation_quads`` reads OUR annotation shape directly (the keys of docs/terms.md plus what the
protocol adds for people: ``creator``, ``modified``, ``via``, ``canonical``), about a hundred times
faster than pyld. Anything it does not know word for word (another key, a compact IRI, a value
object, a relative IRI) goes through pyld instead, so the result is always what the JSON-LD means;
tests/test_rdf.py proves both paths isomorphic to pyld on real annotations.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pyoxigraph as ox

from .config import DEFAULT_CONFORMANCE_DIR
from .errors import InputError, NotAcceptable
from .jsonld import ANNO_CONTEXT, ENRICHER_CONTEXT, ENRICHER_NS

OA = "http://www.w3.org/ns/oa#"
AS = "http://www.w3.org/ns/activitystreams#"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
FOAF = "http://xmlns.com/foaf/0.1/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
IIIF3 = "http://iiif.io/api/presentation/3#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PREFIXES = {
    "oa": OA, "as": AS, "dc": DC, "dcterms": DCTERMS, "foaf": FOAF, "rdf": RDF, "rdfs": RDFS, "xsd": XSD,
    "skos": SKOS, "schema": "https://schema.org/", "iiif3": IIIF3, "enricher": ENRICHER_NS,
}
ANNOTATION_CONTEXT = [ANNO_CONTEXT, ENRICHER_CONTEXT]

# Types, motivations and properties exactly as the W3C context and ours define them.
TYPES = {
    "Annotation": OA + "Annotation", "TextualBody": OA + "TextualBody", "SpecificResource": OA + "SpecificResource",
    "FragmentSelector": OA + "FragmentSelector", "SvgSelector": OA + "SvgSelector", "Software": AS + "Application",
    "Person": FOAF + "Person", "Organization": FOAF + "Organization", "Text": "http://purl.org/dc/dcmitype/Text",
    "Canvas": IIIF3 + "Canvas", "Manifest": IIIF3 + "Manifest",
}
MOTIVATIONS = (
    "bookmarking", "classifying", "commenting", "describing", "editing", "highlighting", "identifying",
    "linking", "moderating", "questioning", "replying", "reviewing", "tagging",
)
VOCAB = {name: OA + name for name in MOTIVATIONS}
IRI, TERM, TEXT, DATETIME, DOUBLE = "iri", "term", "text", "dateTime", "double"
PROPERTIES: dict[str, tuple[str, str]] = {
    "body": (OA + "hasBody", IRI), "target": (OA + "hasTarget", IRI), "source": (OA + "hasSource", IRI),
    "selector": (OA + "hasSelector", IRI), "creator": (DCTERMS + "creator", IRI),
    "generator": (AS + "generator", IRI), "rights": (DCTERMS + "rights", IRI), "via": (OA + "via", IRI),
    "canonical": (OA + "canonical", IRI), "conformsTo": (DCTERMS + "conformsTo", IRI),
    "homepage": (FOAF + "homepage", IRI), "subject": (DCTERMS + "subject", IRI), "partOf": (AS + "partOf", IRI),
    "motivation": (OA + "motivatedBy", TERM), "purpose": (OA + "hasPurpose", TERM),
    "value": (RDF + "value", TEXT), "format": (DC + "format", TEXT), "language": (DC + "language", TEXT),
    "name": (FOAF + "name", TEXT), "nickname": (FOAF + "nick", TEXT), "email": (FOAF + "mbox", TEXT),
    "softwareVersion": ("https://schema.org/softwareVersion", TEXT), "model": (ENRICHER_NS + "model", TEXT),
    "modelSha256": (ENRICHER_NS + "modelSha256", TEXT), "runtime": (ENRICHER_NS + "runtime", TEXT),
    "created": (DCTERMS + "created", DATETIME), "modified": (DCTERMS + "modified", DATETIME),
    "confidence": (ENRICHER_NS + "confidence", DOUBLE),
    # review (issue 5): on every machine annotation, so read here, not by pyld; verdicts (oa:assessing,
    # a TimeState) are few and go through pyld
    "reviewState": (ENRICHER_NS + "reviewState", IRI), "replaces": (DCTERMS + "replaces", IRI),
    "calibratedConfidence": (ENRICHER_NS + "calibratedConfidence", DOUBLE), "calibration": (ENRICHER_NS + "calibration", IRI),
    # provenance (issue 12): the run (a job) that generated a machine annotation
    "wasGeneratedBy": ("http://www.w3.org/ns/prov#wasGeneratedBy", IRI),
}
# Our context scopes ``partOf`` on Canvas and Manifest nodes to dcterms:isPartOf, as IIIF's does.
SCOPED = {IIIF3 + "Canvas", IIIF3 + "Manifest"}
# Prefixes the W3C context and ours define: "oa:tagging" is a compact IRI, not an absolute one.
CONTEXT_PREFIXES = frozenset(
    ("oa", "dc", "dcterms", "dctypes", "foaf", "rdf", "rdfs", "skos", "xsd", "iana", "owl", "as", "schema",
     "enricher", "iiif_prezi", "_")
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# what N-Triples allows inside <...>; pyoxigraph checks the rest of RFC 3987 when it parses
_IRI_CHARS = re.compile(r'[^\x00-\x20<>"{}|^`\\]*')
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_TYPE = f"<{RDF}type>"
_DOUBLE = f"^^<{XSD}double>"
_DATETIME = f"^^<{XSD}dateTime>"
_PART_OF = f"<{DCTERMS}isPartOf>"
_TYPES = {name: f"<{iri}>" for name, iri in TYPES.items()}
_VOCAB = {name: f"<{iri}>" for name, iri in VOCAB.items()}
_PREDICATES = {key: (f"<{iri}>", kind) for key, (iri, kind) in PROPERTIES.items()}
_SCOPED = {f"<{iri}>" for iri in SCOPED}


class _Unknown(Exception):
    """The direct reader does not know this part of the document; pyld must read it."""


def _iri(value: Any) -> str:
    """VALUE as an N-Triples IRI, if it is an absolute IRI (not a compact or relative one)."""
    if not isinstance(value, str):
        raise _Unknown(value)
    scheme = _SCHEME.match(value)
    if scheme is None or scheme.group()[:-1] in CONTEXT_PREFIXES or not _IRI_CHARS.fullmatch(value):
        raise _Unknown(value)  # the JSON-LD rules decide (pyld)
    return f"<{value}>"


def is_iri(value: Any) -> bool:
    """Whether VALUE is an absolute IRI that N-Triples can carry (RFC 3987 is checked on parsing)."""
    return isinstance(value, str) and bool(_SCHEME.match(value)) and bool(_IRI_CHARS.fullmatch(value))


def text_literal(value: str) -> str:
    """VALUE as an N-Triples string literal."""
    return f'"{value.translate(_ESCAPES)}"'


def _double(value: float) -> str:
    """The canonical xsd:double form JSON-LD gives a number (as pyld writes it)."""
    return re.sub(r"(\d)0*E\+?(-)?0*(\d)", r"\1E\2\3", f"{value:1.15E}")


class _Reader:
    """Turn one annotation dict into N-Triples terms, refusing (``_Unknown``) what it does not know.

    Terms are N-Triples text rather than pyoxigraph objects: building a pyoxigraph Triple costs
    microseconds, and the index hands the text to Rust in bulk anyway.
    """

    def __init__(self) -> None:
        self.triples: list[tuple[str, str, str]] = []
        self.blank = f"_:b{uuid.uuid4().hex}x"  # unique to this call: labels from two reads never meet
        self.blanks = 0

    def node(self, document: dict) -> str:
        if not document or any(key.startswith("@") for key in document):
            raise _Unknown(document)
        if "id" in document:
            subject = _iri(document["id"])
        else:
            subject, self.blanks = f"{self.blank}{self.blanks}", self.blanks + 1
        types = self.types(document.get("type"))
        self.triples.extend((subject, _TYPE, t) for t in types)
        scoped = not _SCOPED.isdisjoint(types)
        for key, value in document.items():
            if key == "id" or key == "type" or value is None:
                continue
            if key not in _PREDICATES:
                raise _Unknown(key)
            predicate, kind = _PREDICATES[key]
            if scoped and key == "partOf":
                predicate = _PART_OF
            for item in value if isinstance(value, list) else (value,):
                if item is not None:
                    self.triples.append((subject, predicate, self.value(item, kind)))
        return subject

    def types(self, value: Any) -> list[str]:
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise _Unknown(value)
        return [_TYPES[v] if v in _TYPES else _iri(v) for v in values]

    def value(self, item: Any, kind: str) -> str:
        if kind == IRI:
            return self.node(item) if isinstance(item, dict) else _iri(item)
        if kind == TERM:
            return _VOCAB[item] if isinstance(item, str) and item in _VOCAB else _iri(item)
        if kind == DOUBLE:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise _Unknown(item)
            return f'"{_double(float(item))}"{_DOUBLE}'
        if not isinstance(item, str):
            raise _Unknown(item)
        return text_literal(item) + _DATETIME if kind == DATETIME else text_literal(item)


def _fast_triples(annotation: dict) -> list[tuple[str, str, str]]:
    """Read our annotation shape directly; raise _Unknown for anything else."""
    if annotation.get("@context", ANNOTATION_CONTEXT) != ANNOTATION_CONTEXT:
        raise _Unknown("@context")
    reader = _Reader()
    reader.node({k: v for k, v in annotation.items() if k != "@context"})
    return reader.triples


def _pyld_nquads(annotation: dict, graph: str | None, conformance_dir: str | Path) -> str:
    """What pyld makes of the annotation, in GRAPH, with blank nodes unique to this call."""
    from .jsonld import to_nquads

    document = annotation if "@context" in annotation else {"@context": ANNOTATION_CONTEXT, **annotation}
    where = str(annotation.get("id"))
    prefix = f"b{uuid.uuid4().hex}x"  # pyld labels blank nodes b0, b1 ... in every document
    graph_name = ox.NamedNode(graph) if graph else ox.DefaultGraph()

    def fresh(term):
        return ox.BlankNode(prefix + term.value) if isinstance(term, ox.BlankNode) else term

    quads = [
        ox.Quad(fresh(q.subject), q.predicate, fresh(q.object), graph_name)
        for q in parse_nquads(to_nquads(document, conformance_dir), where)
    ]
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS).decode("utf-8")


def annotation_nquads(
    annotation: dict, graph: str | None = "", conformance_dir: str | Path | None = None
) -> str:
    """Return the RDF of one annotation (a dict as stored or served, with or without @context) as
    N-Quads text in GRAPH: by default the graph named by the annotation's own id; None for the
    default graph. Blank node labels are unique to every call.

    Raises InputError for a document that is not an object, has no absolute id when its graph is
    to be named after it, or is not valid JSON-LD or RDF.
    """
    if not isinstance(annotation, dict):
        raise InputError("an annotation must be a JSON object")
    if graph == "":
        graph = annotation.get("id")
        if not is_iri(graph):
            raise InputError("an annotation needs an absolute IRI as id", where=str(graph))
    suffix = f" <{graph}> .\n" if graph else " .\n"
    try:
        return "".join(f"{s} {p} {o}{suffix}" for s, p, o in _fast_triples(annotation))
    except _Unknown:
        return _pyld_nquads(annotation, graph, conformance_dir or DEFAULT_CONFORMANCE_DIR)


def parse_nquads(text: str, where: str | None = None) -> list[ox.Quad]:
    """Parse N-Quads text into pyoxigraph quads.

    Raises InputError with the parser's message (an IRI RFC 3987 forbids, for one).
    """
    try:
        return list(ox.parse(text.encode("utf-8"), format=ox.RdfFormat.N_QUADS))
    except (SyntaxError, UnicodeEncodeError) as exc:
        raise InputError(f"not valid RDF: {exc}", where=where) from None


def annotation_quads(
    annotation: dict, graph: str | None = "", conformance_dir: str | Path | None = None
) -> list[ox.Quad]:
    """Return the RDF of one annotation as pyoxigraph quads (see annotation_nquads for GRAPH).

    Raises InputError as annotation_nquads does, and for an annotation that is not valid RDF.
    """
    text = annotation_nquads(annotation, graph, conformance_dir)
    return parse_nquads(text, where=str(annotation.get("id")))


# ---- serializations -------------------------------------------------------------------------------

Serializer = Callable[[Iterable[ox.Quad], "IO[bytes] | None", "dict[str, str] | None"], "bytes | None"]


@dataclass(frozen=True)
class Format:
    """An RDF serialization: its name, media type, file extension and serializer ("module:function",
    imported on first use, rdflib-plugin style)."""

    name: str
    media_type: str
    extension: str
    serializer: str
    dataset: bool = False  # keeps named graphs; graph formats merge them
    aliases: tuple[str, ...] = ()

    def load(self) -> Serializer:
        """Import the serializer function."""
        module, _, attribute = self.serializer.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def serialize(
        self, quads: Iterable[ox.Quad], output: IO[bytes] | None = None, prefixes: dict[str, str] | None = None
    ) -> bytes | None:
        """Write QUADS in this format to OUTPUT, or return the bytes when OUTPUT is None."""
        return self.load()(quads, output, PREFIXES if prefixes is None else prefixes)

    @property
    def content_type(self) -> str:
        """The Content-Type header value."""
        return f"{self.media_type}; charset=utf-8" if self.media_type.startswith("text/") else self.media_type


FORMATS: dict[str, Format] = {}
_generation = 0  # counts the changes to FORMATS, for caches of what they offer


def register(fmt: Format) -> None:
    """Add (or replace) a format in the registry."""
    global _generation
    FORMATS[fmt.name] = fmt
    _generation += 1


def generation() -> int:
    """A number that changes whenever a format is registered (a key for caches of negotiation)."""
    return _generation


def formats() -> list[Format]:
    """Every registered format, in registration order (the first is the default)."""
    return list(FORMATS.values())


def get(name: str) -> Format:
    """Return the format with this name, file extension or media type.

    Raises NotAcceptable naming the known formats.
    """
    wanted = name.strip().lower()
    for fmt in FORMATS.values():
        if wanted in (fmt.name, fmt.extension, fmt.media_type, *fmt.aliases):
            return fmt
    raise NotAcceptable(f"unknown RDF format {name!r}; known: {', '.join(FORMATS)}")


def _oxigraph(rdf_format: ox.RdfFormat) -> Serializer:
    def serialize(quads, output, prefixes):
        # graph formats take the triples (named graphs merge); CONSTRUCT answers are triples already
        items = quads if rdf_format.supports_datasets else (getattr(q, "triple", q) for q in quads)
        kwargs = {"prefixes": prefixes} if rdf_format not in (ox.RdfFormat.N_TRIPLES, ox.RdfFormat.N_QUADS) else {}
        return ox.serialize(items, output, format=rdf_format, **kwargs)

    return serialize


turtle = _oxigraph(ox.RdfFormat.TURTLE)
ntriples = _oxigraph(ox.RdfFormat.N_TRIPLES)
nquads = _oxigraph(ox.RdfFormat.N_QUADS)
trig = _oxigraph(ox.RdfFormat.TRIG)
rdfxml = _oxigraph(ox.RdfFormat.RDF_XML)
# Expanded JSON-LD straight from the triples (no context, so no processor can drop blank nodes);
# annotations and pages are served as the JSON we build, which this is only the fallback for.
jsonld = _oxigraph(ox.RdfFormat.JSON_LD)

for _fmt in (
    Format("turtle", "text/turtle", "ttl", "enricher.rdf:turtle", aliases=("application/x-turtle",)),
    Format("jsonld", "application/ld+json", "jsonld", "enricher.rdf:jsonld", dataset=True, aliases=("application/json", "json-ld")),
    Format("ntriples", "application/n-triples", "nt", "enricher.rdf:ntriples", aliases=("n-triples",)),
    Format("nquads", "application/n-quads", "nq", "enricher.rdf:nquads", dataset=True, aliases=("n-quads",)),
    Format("trig", "application/trig", "trig", "enricher.rdf:trig", dataset=True),
    Format("rdfxml", "application/rdf+xml", "rdf", "enricher.rdf:rdfxml", aliases=("xml", "rdf/xml")),
):
    register(_fmt)


# ---- content negotiation --------------------------------------------------------------------------

T = TypeVar("T")


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def _match(media_types: Sequence[str], ranges: list[tuple[str, float]]) -> tuple[int, float]:
    """The specificity and q of the most specific range matching any of MEDIA_TYPES; (-1, 0) if none.

    The most specific match decides: ``text/turtle;q=0, */*`` refuses Turtle under every alias.
    """
    best = (-1, 0.0)
    for media_type in media_types:
        kind = media_type.split("/")[0]
        for media, quality in ranges:
            specificity = 2 if media == media_type else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
            if specificity >= 0:
                best = max(best, (specificity, quality))
    return best


def negotiate(accept: str | None, offers: Sequence[tuple[Sequence[str], T]]) -> T | None:
    """Pick the offer (its media types, a value) the Accept header ranks highest; ties go to the
    earlier offer. No or an empty header takes the first offer; None when nothing is acceptable."""
    if not accept or not accept.strip():
        return offers[0][1] if offers else None
    ranges = _ranges(accept)
    scored = []
    for order, (media_types, value) in enumerate(offers):
        specificity, quality = _match(media_types, ranges)
        if quality > 0:
            scored.append((-quality, -specificity, order, value))
    return min(scored, key=lambda s: s[:3])[3] if scored else None


def choose(
    accept: str | None, format_param: str | None = None, offers: Sequence[str] | None = None, where: str | None = None
) -> Format:
    """Choose the RDF format a request asks for: the ``format`` parameter (name, extension or media
    type) wins over Accept. OFFERS limits the choice to these names (default: every format).

    Raises NotAcceptable naming what is on offer.
    """
    candidates = [get(name) for name in offers] if offers is not None else formats()
    if format_param:
        fmt = get(format_param)
        if fmt in candidates:
            return fmt
        chosen = None
    else:
        chosen = negotiate(accept, [((f.media_type, *f.aliases), f) for f in candidates])
    if chosen is None:
        offered = ", ".join(f"{f.name} ({f.media_type})" for f in candidates)
        asked = f"format={format_param}" if format_param else f"Accept: {accept}"
        raise NotAcceptable(f"{asked} matches none of the formats offered: {offered}", where=where)
    return chosen


@dataclass(frozen=True)
class ResultsFormat:
    """A SPARQL query results serialization (SELECT and ASK)."""

    name: str
    media_type: str
    extension: str
    results_format: ox.QueryResultsFormat
    aliases: tuple[str, ...] = ()

    @property
    def content_type(self) -> str:
        """The Content-Type header value."""
        return f"{self.media_type}; charset=utf-8"


RESULTS_FORMATS: dict[str, ResultsFormat] = {
    f.name: f
    for f in (
        ResultsFormat("json", "application/sparql-results+json", "srj", ox.QueryResultsFormat.JSON, ("application/json",)),
        ResultsFormat("xml", "application/sparql-results+xml", "srx", ox.QueryResultsFormat.XML),
        ResultsFormat("csv", "text/csv", "csv", ox.QueryResultsFormat.CSV),
        ResultsFormat("tsv", "text/tab-separated-values", "tsv", ox.QueryResultsFormat.TSV),
    )
}


def choose_results(accept: str | None, format_param: str | None = None, where: str | None = None) -> ResultsFormat:
    """Choose the SELECT/ASK results format from the ``format`` parameter or Accept (default JSON).

    Raises NotAcceptable naming what is on offer.
    """
    offered = list(RESULTS_FORMATS.values())
    if format_param:
        wanted = format_param.strip().lower()
        chosen = next((f for f in offered if wanted in (f.name, f.extension, f.media_type, *f.aliases)), None)
    else:
        chosen = negotiate(accept, [((f.media_type, *f.aliases), f) for f in offered])
    if chosen is None:
        names = ", ".join(f"{f.name} ({f.media_type})" for f in offered)
        asked = f"format={format_param}" if format_param else f"Accept: {accept}"
        raise NotAcceptable(f"{asked} matches none of the query results formats: {names}", where=where)
    return chosen
