"""IIIF Content Search 1.0 and 2.0 over one enriched manifest's annotations: read a request, look it up
(enricher.search says what a query means, the store's search index finds the annotations) and build
the responses and the services a manifest advertises them with.

1.0 answers are Presentation 2.1 AnnotationLists with ``hits`` (``match``/``before``/``after``) and
``within`` totals, each resource ``on`` a ``canvas#xywh=`` string (the Universal Viewer reads only
that); 2.0 answers are AnnotationPages of the annotations as published, ``partOf`` an
AnnotationCollection with the total, plus highlighting annotations that quote the match. Autocomplete
offers the labels of the vocabulary in every language, and people's words, with counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from . import urls
from .errors import InputError
from .jsonld import IIIF2_CONTEXT
from .review import box_of
from .search import TEXT, WORD, Lexicon, Suggestion, form, words
from .store import Store, StoredAnnotation

SEARCH1_CONTEXT = "http://iiif.io/api/search/1/context.json"
SEARCH2_CONTEXT = "http://iiif.io/api/search/2/context.json"
SEARCH1 = "http://iiif.io/api/search/1/search"
AUTOCOMPLETE1 = "http://iiif.io/api/search/1/autocomplete"
PARAMETERS = ("q", "motivation", "date", "user")  # what the specs define; we honour q and motivation
IGNORED = ("date", "user")
PAGE_SIZE = 100
TERMS = 20  # autocomplete terms at most


@dataclass(frozen=True)
class Query:
    """A search or autocomplete request: the text, the motivations wanted, the page, and the spec's
    parameters it gave that we do not support."""

    q: str
    motivations: tuple[str, ...]
    page: int
    ignored: tuple[str, ...]

    def link(self, url: str, page: int | None = None) -> str:
        """URL of this query (at PAGE) on service URL."""
        params = {"q": self.q, **({"motivation": " ".join(self.motivations)} if self.motivations else {})}
        return f"{url}?{urlencode({**params, **({'page': page} if page else {})})}"


def read_query(args: Mapping[str, str]) -> Query:
    """Read the request's parameters.

    Raises InputError for a page that is not a number from 0.
    """
    page = args.get("page", "0")
    if not page.isdigit():
        raise InputError(f"page must be a whole number from 0, not {page!r}", pointer="/page")
    motivations = tuple(m.removeprefix("oa:").removeprefix("sc:") for m in args.get("motivation", "").split())
    ignored = tuple(name for name in IGNORED if args.get(name))
    return Query(args.get("q", ""), motivations, int(page), ignored)


@dataclass(frozen=True)
class Found:
    """A page of hits: the annotations with the label each is shown by, and the total."""

    hits: list[tuple[StoredAnnotation, str, str | None]]  # annotation, label, its language
    total: int


def search(store: Store, lexicon: Lexicon, key: str, query: Query, size: int = PAGE_SIZE) -> Found:
    """Look QUERY up in container KEY's search index: a page of hits, each with its label in the
    language of the label the query matched."""
    lookup = lexicon.lookup(query.q)
    total = sum(store.term_counts(key, lookup.terms, query.motivations).values())
    page = store.search(key, lookup.terms, query.motivations, query.page * size, size)
    hits = []
    for stored in page:
        shown = lexicon.display(stored.concept, lookup.language) if lookup.language else None
        label, language = (shown, lookup.language) if shown else _text_of(stored.document)
        hits.append((stored, label, language))
    return Found(hits, total)


def _text_of(document: Mapping) -> tuple[str, str | None]:
    """An annotation's first text and its language."""
    bodies = document.get("body")
    for body in bodies if isinstance(bodies, list) else [bodies]:
        if isinstance(body, dict) and isinstance(body.get("value"), str):
            return body["value"], body.get("language")
    return "", None


def complete(store: Store, lexicon: Lexicon, key: str, query: Query, limit: int = TERMS) -> list[tuple[str, str | None, Suggestion | None, int]]:
    """The autocomplete terms for prefix QUERY.q in container KEY: (text, language, the vocabulary's
    suggestion or None for people's words, count), those with hits only, most found first."""
    suggestions = lexicon.complete(query.q)
    counts = store.term_counts(key, [t for s in suggestions for t in s.terms], query.motivations)
    offered = [(s.text, s.language, s, sum(counts.get(t, 0) for t in s.terms)) for s in suggestions]
    offered = [entry for entry in offered if entry[3]]
    known = {form(text) for text, *_ in offered}
    start = " ".join(words(query.q))
    people: dict[str, int] = {}
    if start and not query.motivations:  # people's words: counts kept per term, across motivations
        for prefix in (TEXT, WORD):
            for term, count in store.terms_starting(key, prefix + start, limit):
                text = term[len(prefix):]
                if text not in known:
                    people[text] = people.get(text, 0) + count
    offered += [(text, None, None, count) for text, count in people.items()]
    return sorted(offered, key=lambda e: (-e[3], e[0].casefold()))[:limit]


def _on(stored: StoredAnnotation) -> str:
    """The canvas and region of an annotation as one ``canvas#xywh=`` string."""
    box = box_of(stored.document)
    if box is None:
        return stored.canvas_id
    return f"{stored.canvas_id}#xywh=" + ",".join(str(round(v)) for v in box)


def _after(stored: StoredAnnotation) -> str:
    score = stored.document.get("confidence")
    return f" ({score:.0%})" if isinstance(score, (int, float)) and not isinstance(score, bool) else ""


def _last(found: Found, size: int) -> int:
    return max(0, (found.total - 1) // size)


def search1(url: str, query: Query, found: Found, size: int = PAGE_SIZE) -> dict:
    """The Content Search 1.0 answer (an AnnotationList with hits) of FOUND, at service URL."""
    resources, hits = [], []
    for stored, label, language in found.hits:
        text = {"@type": "cnt:ContentAsText", "chars": label, **({"language": language} if language else {})}
        resources.append({"@id": stored.id, "@type": "oa:Annotation", "motivation": _motivation1(stored.document),
                          "resource": text, "on": _on(stored)})
        hits.append({"@type": "search:Hit", "annotations": [stored.id], "match": label, "before": "",
                     "after": _after(stored)})
    last = _last(found, size)
    document = {
        "@context": [IIIF2_CONTEXT, SEARCH1_CONTEXT],
        "@id": query.link(url, query.page),
        "@type": "sc:AnnotationList",
        "within": {"@type": "sc:Layer", "total": found.total, "first": query.link(url), "last": query.link(url, last)},
        "startIndex": query.page * size,
        "resources": resources,
        "hits": hits,
        "ignored": list(query.ignored),
    }
    if query.page < last:
        document["next"] = query.link(url, query.page + 1)
    if query.page > 0:
        document["prev"] = query.link(url, query.page - 1)
    return document


def _motivation1(document: Mapping) -> str:
    motivation = document.get("motivation")
    first = motivation[0] if isinstance(motivation, list) and motivation else motivation
    return f"oa:{first}" if isinstance(first, str) and ":" not in first else first or "oa:tagging"


def search2(url: str, query: Query, found: Found, size: int = PAGE_SIZE) -> dict:
    """The Content Search 2.0 answer (an AnnotationPage of the annotations as published, with
    highlighting annotations quoting each match) of FOUND, at service URL."""
    items = [{k: v for k, v in stored.document.items() if k != "@context"} for stored, _, _ in found.hits]
    highlights = [
        {"id": f"{stored.id}#hit", "type": "Annotation", "motivation": "highlighting",
         "target": {"type": "SpecificResource", "source": stored.id,
                    "selector": [{"type": "TextQuoteSelector", "prefix": "", "exact": label, "suffix": _after(stored)}]}}
        for stored, label, _ in found.hits
    ]
    last = _last(found, size)
    page = {"type": "AnnotationPage"}
    document = {
        "@context": SEARCH2_CONTEXT,
        "id": query.link(url, query.page),
        "type": "AnnotationPage",
        "startIndex": query.page * size,
        "partOf": {"id": query.link(url), "type": "AnnotationCollection", "total": found.total,
                   "first": {"id": query.link(url), **page}, "last": {"id": query.link(url, last), **page}},
        "items": items,
        "annotations": [{"id": query.link(url, query.page) + "#hits", "type": "AnnotationPage", "items": highlights}],
        "ignored": list(query.ignored),
    }
    if query.page < last:
        document["next"] = {"id": query.link(url, query.page + 1), **page}
    if query.page > 0:
        document["prev"] = {"id": query.link(url, query.page - 1), **page}
    return document


def terms1(url: str, search_url: str, query: Query, offered: Sequence) -> dict:
    """The Content Search 1.0 autocomplete answer (a TermList) at service URL."""
    terms = []
    for text, language, _, count in offered:
        label = {"@value": text, "@language": language} if language else text
        terms.append({"match": text, "url": Query(text, query.motivations, 0, ()).link(search_url), "count": count,
                      "label": label})
    return {"@context": SEARCH1_CONTEXT, "@id": query.link(url), "@type": "search:TermList",
            "ignored": list(query.ignored), "terms": terms}


def terms2(url: str, search_url: str, query: Query, offered: Sequence) -> dict:
    """The Content Search 2.0 autocomplete answer (a TermPage) at service URL: a concept's URI as the
    value, its labels as a language map; people's words as themselves."""
    items = []
    for text, language, suggestion, count in offered:
        concept = suggestion.concept if suggestion else None
        if concept is None:
            items.append({"type": "Term", "value": text, "total": count, "label": {"none": [text]},
                          "service": [{"id": Query(text, query.motivations, 0, ()).link(search_url), "type": "SearchService2"}]})
            continue
        labels: dict[str, list[str]] = {}
        for label in concept.labels:
            labels.setdefault(label.language, []).append(label.text)
        items.append({"type": "Term", "value": concept.uri, "total": count, "label": labels,
                      "service": [{"id": Query(concept.uri, query.motivations, 0, ()).link(search_url),
                                   "type": "SearchService2"}]})
    return {"@context": SEARCH2_CONTEXT, "id": query.link(url), "type": "TermPage",
            "ignored": list(query.ignored), "items": items}


def services(base: str, key: str, version: int) -> list[dict]:
    """The search services an enriched manifest of Presentation VERSION advertises: 1.0 with its
    autocomplete (Mirador, the Universal Viewer) and 2.0 with its autocomplete."""
    one = {"@id": urls.search_url(base, key, 1), "profile": SEARCH1,
           "service": {"@id": urls.autocomplete_url(base, key, 1), "profile": AUTOCOMPLETE1}}
    two = {"id": urls.search_url(base, key, 2), "type": "SearchService2",
           "service": [{"id": urls.autocomplete_url(base, key, 2), "type": "AutoCompleteService2"}]}
    if version == 3:
        one = {**one, "@type": "SearchService1", "service": [{**one["service"], "@type": "AutoCompleteService1"}]}
        return [one, two]
    return [{"@context": SEARCH1_CONTEXT, **one}, {"@context": SEARCH2_CONTEXT, **two}]


def advertise(document: dict, version: int, base: str, key: str) -> dict:
    """DOCUMENT (an enriched manifest of Presentation VERSION) with its search services added to the
    ones it has."""
    have = document.get("service")
    have = [] if have is None else list(have) if isinstance(have, list) else [have]
    known = {entry.get("id", entry.get("@id")) for entry in have if isinstance(entry, dict)}
    added = [entry for entry in services(base, key, version) if entry.get("id", entry.get("@id")) not in known]
    return {**document, "service": have + added}
