"""Model class names mapped to Wikidata and Iconclass concepts, read from SKOS files in Turtle.

``vocab/coco.ttl`` is always loaded; a custom model brings its own file (setting ``vocab``),
loaded after it, so its classes replace COCO classes of the same name. The file sits in the
project's top-level ``vocab/`` folder and ships in the wheel (see ``enricher.datafiles``).

In a file, every ``skos:Concept`` with a ``skos:notation`` outside the Wikidata and Iconclass
namespaces names a model class (the notation is the class name). Its ``skos:prefLabel``s are
the class labels; its ``skos:exactMatch``/``closeMatch``/``broadMatch``/``narrowMatch``/
``relatedMatch`` objects are the concepts it maps to, whose own ``skos:prefLabel``s and
``skos:notation`` are read from the same files.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence
from urllib.parse import unquote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SKOS

from .datafiles import COCO_VOCABULARY
from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
WIKIDATA_PREFIXES = ("http://www.wikidata.org/entity/", "https://www.wikidata.org/entity/")
# Published Iconclass data mixes http and https; both name the same concepts.
ICONCLASS_PREFIXES = ("https://iconclass.org/", "http://iconclass.org/")
MATCHES = {  # SKOS mapping property -> Concept.match, strongest first (the order of Concept lists)
    SKOS.exactMatch: "exact",
    SKOS.closeMatch: "close",
    SKOS.broadMatch: "broad",
    SKOS.narrowMatch: "narrow",
    SKOS.relatedMatch: "related",
}
MATCH_ORDER = {match: rank for rank, match in enumerate(MATCHES.values())}


@dataclass(frozen=True)
class Concept:
    """A concept a class maps to: its URI, vocabulary, match strength, notation and labels."""

    uri: str
    scheme: str  # "wikidata", "iconclass" or "other"
    match: str  # "exact", "close", "broad", "narrow" or "related"
    notation: str | None
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ClassMapping:
    """A model class with its labels (language -> text) and the concepts it maps to."""

    name: str
    labels: Mapping[str, str]
    concepts: tuple[Concept, ...]
    mapped: bool

    def label(self, language: str) -> tuple[str, str]:
        """Return (text, language) in the language asked for, else its base language, else English."""
        return pick_label(self.labels, language) or (self.name, DEFAULT_LANGUAGE)


@dataclass
class Vocabulary:
    """Every known class by name; unknown names still get a text label."""

    classes: Mapping[str, ClassMapping]
    sources: tuple[Path, ...]
    _warned: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, extra: Sequence[str | Path] = ()) -> "Vocabulary":
        """Load vocab/coco.ttl, then each extra mapping file; later files win on equal class names.

        Raises ConfigError naming the file when one is missing, is not Turtle, or maps to a literal.
        """
        sources = (COCO_VOCABULARY, *(Path(p) for p in extra))
        classes: dict[str, ClassMapping] = {}
        for path in sources:
            classes.update(read_classes(path))
        return cls(MappingProxyType(classes), sources)

    def lookup(self, name: str) -> ClassMapping:
        """Return the mapping of a class; an unknown or unmapped one logs a warning once."""
        mapping = self.classes.get(normalise(name))
        if mapping is None:
            mapping = ClassMapping(name, MappingProxyType({DEFAULT_LANGUAGE: name}), (), False)
        if not mapping.mapped:
            with self._lock:
                first = name not in self._warned
                self._warned.add(name)
            if first:
                log.warning("class %r has no Wikidata or Iconclass mapping in %s; it gets a text label only",
                            name, ", ".join(str(p) for p in self.sources))
        return mapping


def loaded(extra: Sequence[str | Path] = ()) -> Vocabulary:
    """The vocabulary of vocab/coco.ttl and the EXTRA mapping files, loaded once per process."""
    return _loaded(tuple(map(str, extra)))


@cache
def _loaded(extra: tuple[str, ...]) -> Vocabulary:
    return Vocabulary.load(extra)


def normalise(name: str) -> str:
    """Return the form class names are stored in: lower case, words split by spaces."""
    return " ".join(name.replace("_", " ").lower().split())


def pick_label(labels: Mapping[str, str], language: str) -> tuple[str, str] | None:
    """Return (text, language) for a language, its base language or English, or None."""
    for lang in (language, language.split("-")[0], DEFAULT_LANGUAGE):
        if lang in labels:
            return labels[lang], lang
    return None


def scheme_of(uri: str) -> str:
    """Return the vocabulary a concept URI belongs to."""
    if uri.startswith(WIKIDATA_PREFIXES):
        return "wikidata"
    if uri.startswith(ICONCLASS_PREFIXES):
        return "iconclass"
    return "other"


def read_classes(path: Path) -> dict[str, ClassMapping]:
    """Read the classes of one SKOS file, keyed by normalised class name.

    Raises ConfigError naming the file when it is missing, malformed or maps to a literal.
    """
    graph = Graph()
    try:
        graph.parse(path, format="turtle")
    except FileNotFoundError:
        raise ConfigError("SKOS mapping file not found", where=str(path)) from None
    except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
        raise ConfigError(f"cannot read SKOS mapping (Turtle): {exc}", where=str(path)) from None
    classes: dict[str, ClassMapping] = {}
    for subject in sorted(set(graph.subjects(RDF.type, SKOS.Concept))):
        if scheme_of(str(subject)) != "other":
            continue
        targets = (target_concept(graph, subject, prop, obj, path)
                   for prop in MATCHES for obj in graph.objects(subject, prop))
        concepts = tuple(sorted(targets, key=lambda c: (MATCH_ORDER[c.match], c.scheme != "wikidata", c.uri)))
        labels = labels_of(graph, subject)
        for notation in graph.objects(subject, SKOS.notation):
            name = str(notation)
            classes[normalise(name)] = ClassMapping(name, labels or MappingProxyType({DEFAULT_LANGUAGE: name}),
                                                    concepts, bool(concepts))
    return classes


def target_concept(graph: Graph, subject: URIRef, prop: URIRef, obj, path: Path) -> Concept:
    """Build the Concept a class maps to through one SKOS mapping property."""
    if not isinstance(obj, URIRef):
        raise ConfigError(f"{subject} skos:{prop.fragment} must name a concept URI, not {obj!r}", where=str(path))
    uri = str(obj)
    scheme = scheme_of(uri)
    notation = graph.value(obj, SKOS.notation)
    if notation is None and scheme != "other":
        # A Wikidata QID or an Iconclass notation is the last segment of the URI.
        notation = unquote(uri.rstrip("/").rsplit("/", 1)[-1])
    return Concept(uri, scheme, MATCHES[prop], None if notation is None else str(notation), labels_of(graph, obj))


def labels_of(graph: Graph, subject: URIRef) -> Mapping[str, str]:
    """Return a concept's skos:prefLabel per language (untagged counts as English)."""
    labels = {}
    for label in sorted(graph.objects(subject, SKOS.prefLabel)):
        if isinstance(label, Literal):
            labels.setdefault(label.language or DEFAULT_LANGUAGE, str(label))
    return MappingProxyType(labels)
