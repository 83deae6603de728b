"""A manifest's annotations in the shapes the Europeana Annotations API accepts.

Each annotation whose concept goes to aggregators (enricher.subjects: accepted, pending above the
threshold, people's tags; never rejected or replaced ones) becomes, per concept its class matches
exactly or closely, a semantic tag (motivation ``tagging``, the body the concept's URI); a tag with
no concept (a person's free text, a class without a mapping) becomes a tag with a language (a
TextualBody of at most MAX_TAG characters with ``language``). The target is the Europeana item
(enricher.aggregation: the aggregation file's rule or a Europeana link in the manifest) scoped to the
canvas's image: ``{scope: item, source: image URL}`` (the item alone where the canvas paints none).
``via`` is our annotation, ``creator`` the Software agent (a person for people's tags), ``generator``
this service, ``created`` kept. Nothing is guessed: what cannot be sent is left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__
from .annotate import SOFTWARE
from .harvest import Catalogue
from .store import Store
from .subjects import Evidence
from .urls import europeana_url

CONTEXT = "http://www.w3.org/ns/anno.jsonld"
MEDIA_TYPE = f'application/ld+json; profile="{CONTEXT}"'
MAX_TAG = 64  # characters of a tag with a language
TAGGED_MATCHES = ("exact", "close")
NO_ITEM, TOO_LONG = "noEuropeanaItem", "tagTooLong"


@dataclass
class Profile:
    """The AnnotationPage of one manifest, and how many annotations were left out, by reason."""

    page: dict
    left_out: dict[str, int] = field(default_factory=lambda: {NO_ITEM: 0, TOO_LONG: 0})

    @property
    def sent(self) -> int:
        """How many annotations the page holds."""
        return len(self.page["items"])


def profile(catalogue: Catalogue, store: Store, key: str) -> Profile | None:
    """The Europeana profile of manifest KEY; None when the manifest is not stored or unreadable."""
    described = catalogue.describe(store, key)
    if described is None:
        return None
    page = {"@context": CONTEXT, "id": europeana_url(catalogue.base, key), "type": "AnnotationPage", "items": []}
    result = Profile(page)
    item = described.object.europeana_item
    images = {c.id: c.image_url for c in described.manifest.canvases}
    generator = {"type": "Software", "name": f"{SOFTWARE} {__version__}", "homepage": catalogue.base}
    for evidence in catalogue.subjects.evidence(store, key):
        if item is None:
            result.left_out[NO_ITEM] += 1
            continue
        image = images.get(evidence.canvas_id)
        target = {"scope": item, "source": image} if image else item
        common = {"target": target, "via": evidence.annotation_id, "creator": _creator(evidence),
                  "generator": generator, **({"created": evidence.created} if evidence.created else {})}
        concepts = [c.uri for c in evidence.mapping.concepts if c.match in TAGGED_MATCHES]
        if concepts:
            page["items"] += [{"type": "Annotation", "motivation": "tagging", "body": uri, **common} for uri in concepts]
        elif len(evidence.text) <= MAX_TAG:
            body = {"type": "TextualBody", "value": evidence.text, "language": evidence.language}
            page["items"].append({"type": "Annotation", "motivation": "tagging", "body": body, **common})
        else:
            result.left_out[TOO_LONG] += 1
    page["leftOut"] = dict(result.left_out)
    return result


def _creator(evidence: Evidence) -> dict:
    """The Software agent that made a machine annotation (also one a person accepted), else the person
    who made or edited the tag."""
    if evidence.generator:
        return {"type": "Software", "name": evidence.generator.get("name", SOFTWARE)}
    person = evidence.creator if isinstance(evidence.creator, dict) else {}
    name = person.get("name") or person.get("nickname")
    return {"type": "Person", **({"name": name} if isinstance(name, str) else {})}
