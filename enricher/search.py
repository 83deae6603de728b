"""What a search finds: the index terms of an annotation, and the terms a query or a prefix means,
read from the SKOS vocabulary (labels in every language, preferred and alternative, concept URIs and
notations, and the Iconclass broader chains).

Index terms (the store keeps one row per term of each public annotation, enricher.store):

    class:{name}   the model class a machine annotation (or a person's tag of a known class) names
    text:{form}    the whole text of a person's other tag, normalised (NORMALISE)
    word:{word}    one word of such a text, when it has several
    iri:{uri}      a concept a person's annotation names that is not a known class

Normalised: accents stripped, case folded, punctuation dropped, words sorted, so ``Chien``, ``chien``
and ``light traffic`` meet ``chien`` and ``traffic light``. A query finds the annotations of every
class under each concept it names (a label in any language, the URI or the notation): the class's
own concept, the Wikidata and Iconclass concepts it maps to, and every Iconclass concept above those.
An annotation carries one class term or text terms, never both, so counts per term add up.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from .jsonld import as_list
from .vocab import DEFAULT_LANGUAGE, ICONCLASS_PREFIXES, MATCHES, normalise, scheme_of

CLASS, TEXT, WORD, IRI = "class:", "text:", "word:", "iri:"
TEXT_PURPOSES = (None, "tagging", "commenting", "describing", "identifying")  # not the classifying display texts
_WORDS = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The words of TEXT with accents stripped and case folded, in order."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _WORDS.findall(plain.casefold())


def form(text: str) -> str:
    """TEXT normalised for matching: its distinct words, sorted, joined by one space."""
    return " ".join(sorted(set(words(text))))


def class_term(name: str) -> str:
    """The index term of model class NAME."""
    return CLASS + normalise(name)


def _texts(document: Mapping) -> list[str]:
    """The texts a person wrote on an annotation (not the display texts of classifying bodies)."""
    return [body["value"] for body in as_list(document.get("body"))
            if isinstance(body, dict) and isinstance(body.get("value"), str)
            and body.get("purpose") in TEXT_PURPOSES]


def _subjects(document: Mapping) -> list[str]:
    """The concept IRIs an annotation's bodies name."""
    found = []
    for body in as_list(document.get("body")):
        if isinstance(body, dict):
            iri = body.get("subject") or body.get("source")
            found += [iri] if isinstance(iri, str) else []
    return found


def index_terms(document: Mapping, concept: str | None, origin: str, known: Iterable[str] | None = None) -> list[str]:
    """The index terms of an annotation: the class term of a machine annotation, or of a person's tag
    of a class in KNOWN (class names; default the loaded vocabulary's), else its texts and concepts."""
    if concept and (origin == "machine" or normalise(concept) in (known if known is not None else lexicon().classes)):
        return [class_term(concept)]
    terms = []
    for text in _texts(document):
        found = form(text)
        if found:
            terms.append(TEXT + found)
            if " " in found:
                terms += [WORD + word for word in found.split(" ")]
    terms += [IRI + iri for iri in _subjects(document)]
    return list(dict.fromkeys(terms))


@dataclass(frozen=True)
class Label:
    """One label of a concept: its text, language and whether it is the preferred one."""

    text: str
    language: str
    preferred: bool


@dataclass
class Entry:
    """A concept of the vocabulary: its labels, notation and the model classes at or under it."""

    uri: str
    labels: list[Label] = field(default_factory=list)
    notation: str | None = None
    classes: set[str] = field(default_factory=set)  # normalised class names

    def label(self, language: str | None) -> Label | None:
        """The preferred label in LANGUAGE, else in English, else any."""
        for lang in (language, DEFAULT_LANGUAGE):
            for label in self.labels:
                if label.preferred and label.language == lang:
                    return label
        return self.labels[0] if self.labels else None


@dataclass(frozen=True)
class Lookup:
    """What a query means: the index terms it looks up, and the language of the label it matched."""

    terms: tuple[str, ...]
    language: str | None
    concepts: tuple[str, ...]  # the vocabulary concepts it named


@dataclass(frozen=True)
class Suggestion:
    """An autocomplete term: the text offered, its language, the concept it names and the index terms
    searching it looks up."""

    text: str
    language: str | None
    concept: Entry | None
    terms: tuple[str, ...]


class Lexicon:
    """The vocabulary as search reads it (see the module docstring)."""

    def __init__(self, sources: Sequence[str | Path]):
        from rdflib import Graph, Literal, URIRef
        from rdflib.namespace import RDF, SKOS

        graph = Graph()
        for path in sources:
            graph.parse(path, format="turtle")
        self.entries: dict[str, Entry] = {}
        self.classes: dict[str, Entry] = {}  # normalised class name -> its concept

        def entry(uri) -> Entry:
            found = self.entries.get(str(uri))
            if found is None:
                found = self.entries[str(uri)] = Entry(str(uri))
                for prop, preferred in ((SKOS.prefLabel, True), (SKOS.altLabel, False)):
                    for label in sorted(graph.objects(uri, prop)):
                        if isinstance(label, Literal):
                            found.labels.append(Label(str(label), label.language or DEFAULT_LANGUAGE, preferred))
                notation = graph.value(uri, SKOS.notation)
                if notation is None and scheme_of(str(uri)) != "other":
                    notation = unquote(str(uri).rstrip("/").rsplit("/", 1)[-1])
                found.notation = None if notation is None else str(notation)
            return found

        for subject in sorted(set(graph.subjects(RDF.type, SKOS.Concept))):
            if scheme_of(str(subject)) != "other" or graph.value(subject, SKOS.notation) is None:
                continue
            own = entry(subject)
            name = normalise(own.notation)
            self.classes[name] = own
            reached = {subject}
            for prop in MATCHES:
                for target in graph.objects(subject, prop):
                    if isinstance(target, URIRef):
                        reached |= {target, *graph.transitive_objects(target, SKOS.broader)}
            for uri in reached:
                entry(uri).classes.add(name)
        self.by_form: dict[str, set[str]] = {}
        for found in self.entries.values():
            for text in [label.text for label in found.labels] + ([found.notation] if found.notation else []):
                self.by_form.setdefault(form(text), set()).add(found.uri)

    def concept(self, uri: str) -> Entry | None:
        """The concept URI names (Iconclass by http or https)."""
        if uri.startswith(ICONCLASS_PREFIXES):
            for prefix in ICONCLASS_PREFIXES:
                found = self.entries.get(prefix + uri.split("://", 1)[1].removeprefix("iconclass.org/"))
                if found:
                    return found
        return self.entries.get(uri)

    def terms_of(self, concepts: Iterable[Entry]) -> list[str]:
        """The class terms of every model class at or under CONCEPTS."""
        return sorted({CLASS + name for found in concepts for name in found.classes})

    def lookup(self, query: str) -> Lookup:
        """What QUERY means: a concept URI, or a label or notation of concepts, or a person's text."""
        query = query.strip()
        if re.match(r"[a-z][a-z0-9+.-]*://", query, re.IGNORECASE):
            found = self.concept(query)
            concepts = [found] if found else []
            return Lookup((*self.terms_of(concepts), IRI + query), None, tuple(c.uri for c in concepts))
        wanted = form(query)
        if not wanted:
            return Lookup((), None, ())
        concepts = [self.entries[uri] for uri in sorted(self.by_form.get(wanted, ()))]
        language = next((label.language for c in concepts for label in c.labels if form(label.text) == wanted), None)
        terms = [*self.terms_of(concepts), TEXT + wanted] + ([] if " " in wanted else [WORD + wanted])
        return Lookup(tuple(terms), language, tuple(c.uri for c in concepts))

    def complete(self, prefix: str) -> list[Suggestion]:
        """The labels (in every language) with a word starting with PREFIX, once per text and language,
        each with the index terms a search for it looks up; concepts that lead to no class are left out."""
        start = " ".join(words(prefix))
        if not start:
            return []
        found: dict[tuple[str, str], Suggestion] = {}
        for concept in self.entries.values():
            if not concept.classes:
                continue
            for label in concept.labels:
                spoken = " ".join(words(label.text))
                if not (spoken.startswith(start) or f" {start}" in f" {spoken}"):
                    continue
                known = found.get((label.text, label.language))
                if known is None or _rank(concept) < _rank(known.concept):
                    found[(label.text, label.language)] = Suggestion(
                        label.text, label.language, concept, tuple(self.lookup(label.text).terms))
        return sorted(found.values(), key=lambda s: (s.text.casefold(), s.language or ""))

    def display(self, name: str | None, language: str | None) -> str | None:
        """The label of model class NAME in LANGUAGE (else English), or None for an unknown class."""
        concept = self.classes.get(normalise(name)) if name else None
        label = concept.label(language) if concept else None
        return label.text if label else None


def _rank(concept: Entry | None) -> int:
    """Which concept an autocomplete term names when several share a label: Wikidata, then the class,
    then Iconclass."""
    scheme = scheme_of(concept.uri) if concept else "none"
    return {"wikidata": 0, "other": 1, "iconclass": 2}.get(scheme, 3)


_lexicons: dict[tuple[str, ...], Lexicon] = {}
_lock = threading.Lock()


def lexicon(extra: Sequence[str | Path] = ()) -> Lexicon:
    """The lexicon of vocab/coco.ttl and the EXTRA mapping files, built once per process.

    Raises ConfigError as Vocabulary.load does for a file that cannot be read.
    """
    from .vocab import Vocabulary

    key = tuple(str(p) for p in extra)
    with _lock:
        if key not in _lexicons:
            _lexicons[key] = Lexicon(Vocabulary.load(extra).sources)
        return _lexicons[key]

