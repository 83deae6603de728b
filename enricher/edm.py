"""An enriched object as a record in the Europeana Data Model (RDF/XML, the external profile that
Europeana's XML Schema and Schematron rules check) and in simple Dublin Core (``oai_dc``).

The record holds the provider's object (edm:ProvidedCHO) with its title, description, type and our
subjects; a WebResource per image with its IIIF service (svcs:Service conforming to the IIIF Image
API); a skos:Concept per Iconclass subject and per broader concept, with labels in every language the
vocabulary has and links to Wikidata; the ore:Aggregation with the provider, rights and links; and
dcterms:provenance statements saying that the subjects are machine-generated, by which model and run,
which a person verified, and what the manifest lacked.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache

from lxml import etree

from .aggregation import ProvidedObject
from .subjects import ConceptTree, Subject

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "edm": "http://www.europeana.eu/schemas/edm/",
    "ore": "http://www.openarchives.org/ore/terms/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "svcs": "http://rdfs.org/sioc/services#",
    "doap": "http://usefulinc.com/ns/doap#",
}
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
IIIF_IMAGE_API = "http://iiif.io/api/image"
MEDIA_TYPE = "application/rdf+xml"
PROVENANCE_LANGUAGE = "en"


@lru_cache(maxsize=None)
def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _add(parent: etree._Element, name: str, text: str | None = None, *, resource: str | None = None,
         about: str | None = None, lang: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if resource is not None:
        element.set(_q("rdf:resource"), resource)
    if about is not None:
        element.set(_q("rdf:about"), about)
    if lang:
        element.set(XML_LANG, lang)
    if text is not None:
        element.text = text
    return element


def edm_record(obj: ProvidedObject, subjects: Sequence[Subject], tree: ConceptTree, manifest_id: str,
               aggregation_uri: str) -> etree._Element:
    """Build the EDM record (rdf:RDF) of OBJ with SUBJECTS; MANIFEST_ID is the source IIIF manifest,
    AGGREGATION_URI names our ore:Aggregation."""
    root = etree.Element(_q("rdf:RDF"), nsmap=NS)
    cho = _add(root, "edm:ProvidedCHO", about=obj.uri)
    for text, lang in obj.descriptions:
        _add(cho, "dc:description", text, lang=lang)
    for subject in subjects:
        _add(cho, "dc:subject", resource=subject.concept.uri)
    for text, lang in obj.titles:
        _add(cho, "dc:title", text, lang=lang)
    for statement in provenance(obj, subjects):
        _add(cho, "dcterms:provenance", statement, lang=PROVENANCE_LANGUAGE)
    _add(cho, "edm:type", "IMAGE")
    services: dict[str, str | None] = {}
    for image, service, profile in dict.fromkeys(obj.images):
        resource = _add(root, "edm:WebResource", about=image)
        _add(resource, "dcterms:isReferencedBy", resource=manifest_id)
        if service:
            _add(resource, "svcs:has_service", resource=service)
            services[service] = profile
    _concepts(root, subjects, tree)
    for service, profile in services.items():
        element = _add(root, "svcs:Service", about=service)
        _add(element, "dcterms:conformsTo", resource=IIIF_IMAGE_API)
        if profile:
            _add(element, "doap:implements", resource=profile)
    aggregation = _add(root, "ore:Aggregation", about=aggregation_uri)
    _add(aggregation, "edm:aggregatedCHO", resource=obj.uri)
    _add(aggregation, "edm:dataProvider", obj.data_provider)
    images = list(dict.fromkeys(image for image, _, _ in obj.images))
    for image in images[1:]:
        _add(aggregation, "edm:hasView", resource=image)
    if obj.shown_at:
        _add(aggregation, "edm:isShownAt", resource=obj.shown_at)
    if images:
        _add(aggregation, "edm:isShownBy", resource=images[0])
    _add(aggregation, "edm:provider", obj.provider)
    _add(aggregation, "edm:rights", resource=obj.rights)
    return root


def _concepts(root: etree._Element, subjects: Sequence[Subject], tree: ConceptTree) -> None:
    """A skos:Concept per subject and per concept of its broader chain, each once."""
    written: set[str] = set()
    for subject in subjects:
        chain = tree.chain(subject.concept.uri)
        links = tuple(subject.wikidata())
        if not chain:  # a concept the vocabulary files describe only through the class mapping
            labels = tuple(sorted(subject.concept.labels.items()))
            root.append(copy.deepcopy(_concept(subject.concept.uri, labels, None, None, links)))
            continue
        for n, entry in enumerate(chain):
            if entry.uri not in written:
                written.add(entry.uri)
                labels = tuple(sorted(entry.labels.items()))
                element = _concept(entry.uri, labels, entry.broader, entry.notation, links if n == 0 else ())
                root.append(copy.deepcopy(element))


@lru_cache(maxsize=4096)
def _concept(uri: str, labels: tuple[tuple[str, str], ...], broader: str | None, notation: str | None,
             links: tuple[tuple[str, str], ...]) -> etree._Element:
    """One skos:Concept, built once per process and copied into each record (most records share them)."""
    element = etree.Element(_q("skos:Concept"), nsmap=NS)
    element.set(_q("rdf:about"), uri)
    for lang, label in labels:
        _add(element, "skos:prefLabel", label, lang=lang)
    if broader:
        _add(element, "skos:broader", resource=broader)
    for target, match in links:
        _add(element, f"skos:{match}Match", resource=target)
    if notation:
        _add(element, "skos:notation", notation)
    return element


def provenance(obj: ProvidedObject, subjects: Sequence[Subject]) -> list[str]:
    """What the record says about where its subjects and its gaps come from, in English."""
    statements = []
    runs: dict[str, set[str]] = {}
    for subject in subjects:
        for evidence in subject.evidence:
            if evidence.generator:
                agent = evidence.generator
                model = f"model {agent.get('model')} (SHA-256 {agent.get('modelSha256')}) in {agent.get('name')}"
                runs.setdefault(model, set()).add(str(evidence.created))
    if runs:
        described = "; ".join(f"{model}, runs of {', '.join(sorted(dates))}" for model, dates in sorted(runs.items()))
        statements.append(f"The dc:subject concepts were generated by machine (object detection), not by the "
                          f"data provider: {described}.")
    for subject in subjects:
        label = subject.concept.labels.get("en") or subject.mapping.label("en")[0]
        name = f"dc:subject {subject.concept.uri} ({label})"
        if subject.verified:
            statements.append(f"{name} was verified by a person.")
        else:
            best = max((e.confidence for e in subject.evidence if e.confidence is not None), default=None)
            confidence = "" if best is None else f"; machine confidence {best:.2f}"
            statements.append(f"{name} was not verified by a person{confidence}.")
    return statements + list(obj.notes)


def oai_dc_record(obj: ProvidedObject, subjects: Sequence[Subject], manifest_id: str) -> etree._Element:
    """The same object in simple Dublin Core: titles, descriptions, the subjects' URIs and labels,
    type, identifier, rights, publisher and the IIIF manifest as a relation."""
    dc = NS["dc"]
    root = etree.Element(f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": dc, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", f"{OAI_DC} {OAI_DC_SCHEMA}")

    def add(name: str, text: str, lang: str | None = None) -> None:
        element = etree.SubElement(root, f"{{{dc}}}{name}")
        element.text = text
        if lang:
            element.set(XML_LANG, lang)

    for text, lang in obj.titles:
        add("title", text, lang)
    for text, lang in obj.descriptions:
        add("description", text, lang)
    for subject in subjects:
        add("subject", subject.concept.uri)
        for lang, label in sorted(subject.concept.labels.items()):
            add("subject", label, lang)
    add("type", "Image")
    add("identifier", obj.uri)
    add("rights", obj.rights)
    add("publisher", obj.data_provider)
    add("relation", manifest_id)
    return root
