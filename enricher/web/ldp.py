"""LDP Basic Containers of annotations as the Web Annotation Protocol wants them: the Prefer header,
container and AnnotationPage documents, and the Link headers that type each resource.

A container has two representations, named by their Content-Location: ``{container}?iris=0`` embeds
full annotations in its pages (the default, PreferContainedDescriptions) and ``{container}?iris=1``
only their IRIs (PreferContainedIRIs). PreferMinimalContainer links the first and last page instead
of embedding the first. Pages are ``{container}?iris=N&page=P``, P from 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from ..jsonld import ANNO_CONTEXT, ENRICHER_CONTEXT
from .turtle import LDP_CONTEXT

LDP = "http://www.w3.org/ns/ldp#"
OA = "http://www.w3.org/ns/oa#"
PREFER_MINIMAL = LDP + "PreferMinimalContainer"
PREFER_IRIS = OA + "PreferContainedIRIs"
PREFER_DESCRIPTIONS = OA + "PreferContainedDescriptions"
PROTOCOL = "http://www.w3.org/TR/annotation-protocol/"
CONTAINER_LINKS = (f'<{LDP}BasicContainer>; rel="type"', f'<{PROTOCOL}>; rel="{LDP}constrainedBy"')
RESOURCE_LINK = f'<{LDP}Resource>; rel="type"'
# Items carry our terms (confidence, generator details), so pages name our context after the W3C one.
PAGE_CONTEXT = [ANNO_CONTEXT, ENRICHER_CONTEXT]
CONTAINER_CONTEXT = [ANNO_CONTEXT, LDP_CONTEXT, ENRICHER_CONTEXT]
_PARAM = re.compile(r'\s*([^\s=;,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s;,]*))?\s*([;,]|$)')


@dataclass(frozen=True)
class View:
    """Which representation of a container a request gets."""

    iris: bool = False
    minimal: bool = False
    applied: bool = False  # a return=representation preference was honoured

    def variant(self, container: str) -> str:
        """The IRI of this representation (its Content-Location and ``id``)."""
        return f"{container}?iris={int(self.iris)}"


def parse_prefer(headers: Sequence[str]) -> dict[str, dict[str, str]]:
    """Parse Prefer headers (RFC 7240) into {preference: {parameter: value}}, the preference's own
    value under the key ``""``; quotes are removed, malformed parts skipped."""
    preferences: dict[str, dict[str, str]] = {}
    for header in headers:
        current: dict[str, str] | None = None
        for match in _PARAM.finditer(header):
            name, value, separator = match.group(1).lower(), (match.group(2) or "").strip('"'), match.group(3)
            if current is None:
                current = preferences.setdefault(name, {"": value})
            else:
                current[name] = value
            if separator != ";":
                current = None
    return preferences


@lru_cache(maxsize=256)
def choose_view(prefer: str | None, iris_param: str | None) -> View:
    """Pick the representation from the Prefer header (return=representation with include/omit; the
    WSGI server joins repeated ones) and ``?iris=``, which wins as it names a representation directly.
    Requests repeat a few of each: a page request pays a lookup, not the parsing."""
    wanted = parse_prefer([prefer] if prefer else []).get("return", {})
    applied = wanted.get("") == "representation"
    include = set(wanted.get("include", "").split()) if applied else set()
    omit = set(wanted.get("omit", "").split()) if applied else set()
    minimal = PREFER_MINIMAL in include or {PREFER_IRIS, PREFER_DESCRIPTIONS} <= omit
    iris = PREFER_IRIS in include or PREFER_DESCRIPTIONS in omit
    if iris_param in ("0", "1"):
        iris = iris_param == "1"
    return View(iris=iris, minimal=minimal, applied=applied and bool(include | omit))


def page_url(container: str, view: View, index: int) -> str:
    """The IRI of page INDEX of a container representation."""
    return f"{view.variant(container)}&page={index}"


def last_page(total: int, page_size: int) -> int:
    """The index of the last page (0 for an empty container)."""
    return max(0, (total - 1) // page_size)


def page_document(
    container: str, view: View, index: int, total: int, page_size: int, items: list, *, embedded: bool = False
) -> dict:
    """Build AnnotationPage INDEX of a container: ITEMS are annotation dicts or IRIs; EMBEDDED leaves
    out the @context (the page sits inside the container document)."""
    page: dict = {} if embedded else {"@context": PAGE_CONTEXT}
    page.update(
        id=page_url(container, view, index),
        type="AnnotationPage",
        partOf={"id": view.variant(container), "type": "AnnotationCollection", "total": total},
        startIndex=index * page_size,
    )
    if index > 0:
        page["prev"] = page_url(container, view, index - 1)
    if index < last_page(total, page_size):
        page["next"] = page_url(container, view, index + 1)
    page["items"] = items
    return page


def container_document(container: str, view: View, label: str, total: int, page_size: int, first_items: list) -> dict:
    """Build the container document: an ldp:BasicContainer that is an AnnotationCollection, with its
    first page embedded (FIRST_ITEMS) unless the view is minimal. An empty container has no pages."""
    document = {
        "@context": CONTAINER_CONTEXT,
        "id": view.variant(container),
        "type": ["BasicContainer", "AnnotationCollection"],
        "label": label,
        "total": total,
    }
    if total:
        last = page_url(container, view, last_page(total, page_size))
        if view.minimal:
            document["first"] = page_url(container, view, 0)
        else:
            document["first"] = page_document(container, view, 0, total, page_size, first_items, embedded=True)
        document["last"] = last
    return document
