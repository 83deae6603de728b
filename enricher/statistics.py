"""The statistics graph: how many live annotations tag each model class, per model, kept in the RDF
index beside the annotations, so that a count over the whole dataset reads a few triples per class
instead of every annotation (docs/queries.md, *Statistics*).

The figures come from the system of record (``Store.class_counts``, kept by triggers) and are
restated by whatever feeds the index (enricher.index after each catch-up, enricher.push beside the
changes it delivers), so they are as fresh as the index. In STATISTICS_GRAPH::

    <https://w3id.org/enricher/statistics> a void:Dataset ;
        void:entities 1200 ;                     # live annotations, verdicts left out
        void:subset _:dog .
    _:dog a enricher:ClassPartition , void:Dataset ;
        enricher:modelClass "dog" ;
        enricher:partitionModel "9f2c..." ;      # absent: annotations people wrote
        dcterms:subject wd:Q144 , iconclass:34B11 ;   # the concepts the class's annotations name
        void:entities 300 .
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

from . import rdf
from .store import ClassCount
from .vocab import Vocabulary, normalise

STATISTICS_GRAPH = "https://w3id.org/enricher/statistics"
VOID = "http://rdfs.org/ns/void#"


def statistics_ntriples(counts: Iterable[ClassCount], vocabulary: Vocabulary) -> str:
    """The statistics graph's triples (N-Triples) for COUNTS, each class's concepts from VOCABULARY."""
    counts = list(counts)
    root = f"<{STATISTICS_GRAPH}>"
    lines = [f"{root} <{rdf.RDF}type> <{VOID}Dataset> .",
             f"{root} <{VOID}entities> {_integer(sum(c.live for c in counts))} .",
             partitions_ntriples(counts, vocabulary, STATISTICS_GRAPH)]
    return "\n".join(lines)


def partitions_ntriples(counts: Iterable[ClassCount], vocabulary: Vocabulary, dataset: str) -> str:
    """DATASET's void:subset class partitions (N-Triples), one per entry of COUNTS, as the statistics
    graph states them: the class, the model (none: people's annotations), the class's concepts, the count."""
    root, lines = f"<{dataset}>", []
    for number, count in enumerate(counts):
        node = f"_:class{number}"
        lines += [f"{root} <{VOID}subset> {node} .",
                  f"{node} <{rdf.RDF}type> <{rdf.ENRICHER_NS}ClassPartition> .",
                  f"{node} <{rdf.RDF}type> <{VOID}Dataset> .",
                  f"{node} <{rdf.ENRICHER_NS}modelClass> {rdf.text_literal(count.concept)} .",
                  f"{node} <{VOID}entities> {_integer(count.live)} ."]
        if count.model_sha256:
            lines.append(f"{node} <{rdf.ENRICHER_NS}partitionModel> {rdf.text_literal(count.model_sha256)} .")
        lines += [f"{node} <{rdf.DCTERMS}subject> <{uri}> ." for uri in class_concepts(count.concept, vocabulary)]
    return "".join(line + "\n" for line in lines)


def class_concepts(concept: str, vocabulary: Vocabulary) -> list[str]:
    """The concept IRIs that VOCABULARY maps model class CONCEPT to (none for a class it does not know)."""
    mapping = vocabulary.classes.get(normalise(concept))
    return [c.uri for c in mapping.concepts if rdf.is_iri(c.uri)] if mapping else []


def distinct_concepts(counts: Iterable[ClassCount], vocabulary: Vocabulary, written: Iterable[str]) -> set[str]:
    """The concepts live annotations name: those of each class in COUNTS (its VOCABULARY concepts) and
    the IRIs in WRITTEN (those people's annotations name, Store.written_concepts) that are IRIs.

    What SPARQL counts as distinct dcterms:subject over the dump, where annotations are made as they are
    now; it differs for what the kept counts do not keep: the review states and reasons that verdicts
    name (vocab/verdicts.ttl) are left out; a person's annotation of a known class counts as the class's
    concepts (whatever else it names), an exhaustiveness statement as its first class's; an annotation
    made under other mapping files counts under the loaded ones."""
    found = {uri for count in counts for uri in class_concepts(count.concept, vocabulary)}
    return found | {uri for uri in written if rdf.is_iri(uri)}


def _integer(value: int) -> str:
    return f'"{value}"^^<{rdf.XSD}integer>'


STATED = f"""SELECT ?concept ?model ?live WHERE {{ GRAPH <{STATISTICS_GRAPH}> {{
  <{STATISTICS_GRAPH}> <{VOID}subset> ?partition .
  ?partition <{rdf.ENRICHER_NS}modelClass> ?concept ; <{VOID}entities> ?live .
  OPTIONAL {{ ?partition <{rdf.ENRICHER_NS}partitionModel> ?model }}
}} }}"""


def stated(store: ox.Store) -> set[ClassCount]:
    """The class counts the statistics graph of STORE (an Oxigraph store) holds now."""
    return {ClassCount(row["concept"].value, row["model"].value if row["model"] else None, int(row["live"].value))
            for row in store.query(STATED)}
