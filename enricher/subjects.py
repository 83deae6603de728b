"""The concepts an enriched manifest gives aggregators, with the evidence behind each.

A live annotation counts when its concept may leave the house: a machine annotation a curator
accepted; a pending one whose confidence (calibrated where a calibration applies, raw otherwise)
reaches the threshold (setting ``aggregation_threshold``); a person's tag, made or edited. Rejected
and corrected (replaced) machine annotations never count, nor does anything but a tag.

The subjects of a record are the Iconclass concepts of the counted classes: Europeana dereferences
Iconclass URIs as concepts, while it takes Wikidata URIs for agents, so Wikidata items are linked from
the Iconclass concept (``ConceptTree``, with its labels and broader chain), never subjects themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import SKOS

from .errors import ConfigError
from .jsonld import as_list
from .review import HIDDEN, class_of
from .served import Calibrations
from .store import Store
from .vocab import DEFAULT_LANGUAGE, ClassMapping, Concept, Vocabulary, normalise

PAGE = 1000  # annotations read per store page


@dataclass(frozen=True)
class Evidence:
    """One live annotation whose concept goes to aggregators."""

    annotation_id: str
    mapping: ClassMapping  # the class it tags (for a person's free tag: that text, unmapped)
    text: str  # the tag as written (a machine's: the class label in the annotation's language)
    language: str
    verified: bool  # a person made, edited or accepted it
    confidence: float | None  # as served: calibrated where a calibration applies
    generator: dict | None  # the Software agent of a machine annotation
    creator: dict | None  # the person who made or edited it
    created: str | None
    canvas_id: str


@dataclass(frozen=True)
class Subject:
    """An Iconclass concept a record's object shows, and the annotations that say so."""

    concept: Concept
    mapping: ClassMapping
    evidence: tuple[Evidence, ...]

    @property
    def verified(self) -> bool:
        """Whether a person made, edited or accepted one of the annotations."""
        return any(e.verified for e in self.evidence)

    def wikidata(self) -> list[tuple[str, str]]:
        """(Wikidata item, ``exact`` or ``close``): the class's items, exact when both it and this
        concept match the class exactly."""
        return [(c.uri, "exact" if c.match == self.concept.match == "exact" else "close")
                for c in self.mapping.concepts if c.scheme == "wikidata"]


@dataclass(frozen=True)
class ConceptEntry:
    uri: str
    notation: str | None
    labels: Mapping[str, str]
    broader: str | None


class ConceptTree:
    """Labels, notations and broader concepts of the concepts in the vocabulary files."""

    def __init__(self, entries: Mapping[str, ConceptEntry]):
        self.entries = entries

    @classmethod
    def load(cls, sources: Sequence[Path]) -> ConceptTree:
        """Read SOURCES (vocabulary.sources), once per process. Raises ConfigError naming a bad file."""
        return _tree(tuple(sources))

    def chain(self, uri: str) -> list[ConceptEntry]:
        """URI's entry and those of its broader concepts, narrowest first (a cycle stops the chain)."""
        chain: list[ConceptEntry] = []
        while uri in self.entries and all(e.uri != uri for e in chain):
            chain.append(self.entries[uri])
            uri = self.entries[uri].broader or ""
        return chain


@lru_cache(maxsize=8)
def _tree(sources: tuple[Path, ...]) -> ConceptTree:
    graph = Graph()
    for path in sources:
        try:
            graph.parse(path, format="turtle")
        except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
            raise ConfigError(f"cannot read SKOS vocabulary (Turtle): {exc}", where=str(path)) from None
    entries = {}
    for subject in set(graph.subjects(SKOS.prefLabel, None)) | set(graph.subjects(SKOS.broader, None)):
        if not isinstance(subject, URIRef):
            continue
        labels: dict[str, str] = {}
        for label in sorted(graph.objects(subject, SKOS.prefLabel)):
            if isinstance(label, Literal):
                labels.setdefault(label.language or DEFAULT_LANGUAGE, str(label))
        notation, broader = graph.value(subject, SKOS.notation), graph.value(subject, SKOS.broader)
        entries[str(subject)] = ConceptEntry(str(subject), None if notation is None else str(notation),
                                             MappingProxyType(labels), None if broader is None else str(broader))
    return ConceptTree(MappingProxyType(entries))


class Subjects:
    """Which annotations and concepts of a manifest go to aggregators (see the module docstring)."""

    def __init__(self, vocabulary: Vocabulary, threshold: float, base: str):
        self.vocabulary, self.threshold, self.base = vocabulary, threshold, base
        self.tree = ConceptTree.load(vocabulary.sources)

    def evidence(self, store: Store, key: str) -> Iterator[Evidence]:
        """The live annotations of manifest KEY whose concepts go to aggregators, in store order."""
        calibrations = Calibrations(store, self.base)
        for offset in range(0, store.count(key), PAGE):
            for stored in store.page(key, offset, PAGE):
                if stored.review_state in HIDDEN:
                    continue
                document = stored.document
                if "tagging" not in as_list(document.get("motivation")):
                    continue
                name = class_of(document)
                if not name:
                    continue
                machine = stored.origin == "machine"
                confidence = calibrations.fields(stored).get("calibratedConfidence", document.get("confidence"))
                if not isinstance(confidence, (int, float)) or isinstance(confidence, bool):
                    confidence = None
                if machine and stored.review_state != "accepted" and (confidence is None or confidence < self.threshold):
                    continue
                text, language = _tag(document, name)
                yield Evidence(
                    annotation_id=stored.id, mapping=self._mapping(name), text=text, language=language,
                    verified=not machine or stored.review_state == "accepted", confidence=confidence,
                    generator=document.get("generator") if stored.model_sha256 else None,
                    creator=document.get("creator"), created=document.get("created"), canvas_id=stored.canvas_id,
                )

    def of(self, store: Store, key: str) -> list[Subject]:
        """The Iconclass concepts manifest KEY gives aggregators, in the order first found; empty when
        none (the record is then deleted)."""
        found: dict[str, tuple[Concept, ClassMapping, list[Evidence]]] = {}
        for evidence in self.evidence(store, key):
            for concept in evidence.mapping.concepts:
                if concept.scheme == "iconclass":
                    found.setdefault(concept.uri, (concept, evidence.mapping, []))[2].append(evidence)
        return [Subject(concept, mapping, tuple(evidence)) for concept, mapping, evidence in found.values()]

    def _mapping(self, name: str) -> ClassMapping:
        """The class NAME names; a person's free text maps to nothing (and logs no warning)."""
        known = self.vocabulary.classes.get(normalise(name))
        return known or ClassMapping(name, MappingProxyType({DEFAULT_LANGUAGE: name}), (), False)


def _tag(document: dict, name: str) -> tuple[str, str]:
    """The text and language of an annotation's tagging body (else the class name in English)."""
    for body in as_list(document.get("body")):
        if isinstance(body, dict) and body.get("purpose") in ("tagging", None) and isinstance(body.get("value"), str):
            language = body.get("language")
            return body["value"], language if isinstance(language, str) and language else DEFAULT_LANGUAGE
    return name, DEFAULT_LANGUAGE
