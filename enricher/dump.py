"""The full dump and the dataset's VoID description.

The dump is everything the SPARQL endpoint sees: each annotation in its own named graph (named by
its id), the vocabulary graph (concepts, labels, broader chains) and our terms, as N-Quads, or merged
into N-Triples; gzip-compressed. It opens with a statement of the dataset and its licence (each
annotation also carries its own ``dcterms:rights``), so the licence travels with every copy.

It is read from one snapshot of the RDF index, serialized by Oxigraph itself (a fraction of a
microsecond per quad, where Python would spend several) in a producer thread that hands chunks
through a short queue (enricher.produced): memory stays flat however large the dataset, and a client
that stops reading stops the producer. The index follows the store's change log, so the dump holds every committed write.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping

import pyoxigraph as ox

from . import rdf
from .config import Config
from .errors import InputError
from .indexes import RDFIndex
from .produced import produced
from .statistics import VOID, distinct_concepts, partitions_ntriples
from .store import Store
from .urls import dataset_url, dump_url, public_base, sparql_url, void_url
from .vocab import loaded

FORMATS = {"nquads": "nq", "ntriples": "nt"}  # line-based: written as they come, never all in memory
GZIP_LEVEL = 1  # a dump is written per request: level 6 costs three times the CPU for a third less size
GZIP = 31  # zlib window bits for a gzip container
TITLE = "Annotations of IIIF images by the enricher"


def header(base: str, licence: str, format: str = "nquads") -> list[ox.Quad]:
    """The statements a dump opens with: the dataset, its licence, this dump and the full description."""
    node = ox.NamedNode(dataset_url(base))

    def quad(predicate: str, obj) -> ox.Quad:
        return ox.Quad(node, ox.NamedNode(predicate), obj)

    return [
        quad(rdf.RDF + "type", ox.NamedNode(VOID + "Dataset")),
        quad(rdf.DCTERMS + "title", ox.Literal(TITLE, language="en")),
        quad(rdf.DCTERMS + "license", ox.NamedNode(licence)),
        quad(VOID + "dataDump", ox.NamedNode(dump_url(base, FORMATS[format]))),
        quad(rdf.RDFS + "seeAlso", ox.NamedNode(void_url(base))),
    ]


def dump(
    index: RDFIndex, store: Store, config: Config, *, format: str = "nquads", compress: bool = True
) -> Iterator[bytes]:
    """Bring INDEX up to date with STORE, then yield the dump in FORMAT (nquads or ntriples), gzip-
    compressed unless COMPRESS is false. N-Triples merges the graphs: a triple in several (a concept
    two annotations share, say) comes out once per graph.

    Raises InputError for another format (before anything is read).
    """
    if format not in FORMATS:
        raise InputError(f"a dump is N-Quads or N-Triples ({', '.join(FORMATS)}), not {format!r}", where=format)
    index.refresh(store)
    opening = ox.serialize(header(public_base(config.base_url), config.licence, format), format=ox.RdfFormat.N_QUADS)
    return _encode(_chain(opening, quads(index, format)), compress)


def quads(index: RDFIndex, format: str = "nquads") -> Iterator[bytes]:
    """INDEX's quads as its write_dump writes them in FORMAT, uncompressed and without the opening
    statements, chunk by chunk from a producer thread (as the dump)."""
    return produced(lambda output: index.write_dump(output, format), name="enricher-dump")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _encode(chunks: Iterator[bytes], compress: bool) -> Iterator[bytes]:
    if not compress:
        yield from chunks
        return
    gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP)
    for chunk in chunks:
        if data := gzip.compress(chunk):
            yield data
    yield gzip.flush()


def void(store: Store, config: Config) -> list[ox.Quad]:
    """Describe the dataset in VoID from STORE, the system of record: annotations, distinct concepts,
    the class partitions of the statistics graph, licence, SPARQL endpoint and both dumps. Every figure
    is read from counts the store keeps (no scan of the annotations, no RDF index), so it costs the same
    at a million annotations as at ten thousand. No void:triples (optional in VoID): the index counts
    its quads by walking them (0.9 s at 100 k annotations, 8.9 s at 1 M). Serialize with rdf.choose(...).serialize(quads)."""
    base = public_base(config.base_url)
    dumps = {rdf.get(name).media_type: dump_url(base, extension) for name, extension in FORMATS.items()}
    counts, vocabulary = store.class_counts(), loaded(config.vocab)
    concepts = distinct_concepts(counts, vocabulary, store.written_concepts())
    annotations = store.count(None) + store.count(None, "verdict")
    partitions = ox.parse(partitions_ntriples(counts, vocabulary, dataset_url(base)), format=ox.RdfFormat.N_TRIPLES)
    return void_quads(annotations, len(concepts), dataset_url(base), partitions=partitions, sparql=sparql_url(base),
                      dumps=dumps, licence=config.licence, title=TITLE)


def void_quads(
    annotations: int, concepts: int, dataset: str, *, partitions: Iterable[ox.Quad] = (), sparql: str | None = None,
    dumps: Mapping[str, str] | None = None, licence: str | None = None, title: str = TITLE,
) -> list[ox.Quad]:
    """Describe DATASET in VoID: how many ANNOTATIONS (oa:Annotation, verdicts included), how many
    distinct CONCEPTS (dcterms:subject) they name, its PARTITIONS (enricher.statistics), licence,
    SPARQL endpoint and the dumps (media type -> URL). Serialize with rdf.choose(...).serialize(quads)."""
    node = ox.NamedNode(dataset)
    subjects, classed = ox.BlankNode(), ox.BlankNode()

    def quad(subject, predicate: str, obj) -> ox.Quad:
        return ox.Quad(subject, ox.NamedNode(predicate), obj)

    def count(value: int) -> ox.Literal:
        return ox.Literal(str(value), datatype=ox.NamedNode(rdf.XSD + "integer"))

    quads = [
        quad(node, rdf.RDF + "type", ox.NamedNode(VOID + "Dataset")),
        quad(node, rdf.DCTERMS + "title", ox.Literal(title, language="en")),
        quad(node, VOID + "entities", count(annotations)),
        quad(node, VOID + "classPartition", classed),
        quad(classed, VOID + "class", ox.NamedNode(rdf.OA + "Annotation")),
        quad(classed, VOID + "entities", count(annotations)),
        quad(node, VOID + "propertyPartition", subjects),
        quad(subjects, VOID + "property", ox.NamedNode(rdf.DCTERMS + "subject")),
        quad(subjects, VOID + "distinctObjects", count(concepts)),
        *(quad(node, VOID + "vocabulary", ox.NamedNode(v)) for v in (rdf.OA, rdf.ENRICHER_NS, rdf.SKOS)),
        *partitions,
    ]
    if licence:
        quads.append(quad(node, rdf.DCTERMS + "license", ox.NamedNode(licence)))
    if sparql:
        quads.append(quad(node, VOID + "sparqlEndpoint", ox.NamedNode(sparql)))
    for media_type, url in (dumps or {}).items():
        quads.append(quad(node, VOID + "dataDump", ox.NamedNode(url)))
        quads.append(quad(ox.NamedNode(url), "http://www.w3.org/ns/dcat#mediaType", ox.Literal(media_type)))
    return quads
