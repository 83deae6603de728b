"""EDM records through Europeana's own validation (its XML Schema and its Schematron rules), on the demo
manifests enriched by the demo model and on a manifest with the least metadata IIIF allows; then what a
record says, field by field: the provider's object URI, the curated subjects, the concepts with their
labels and broader chains, Wikidata linked from them, and the provenance."""

from __future__ import annotations

import json

import pytest
from aggregated import GENERATOR, edm_validator, enrich, judge, tag
from factories import make_manifest
from lxml import etree

from enricher import edm, harvest
from enricher.annotate import manifest_key
from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.errors import ConfigError
from enricher.fetch import Fetcher
from enricher.harvest import Catalogue
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher
from enricher.store import open_store
from enricher.vocab import Vocabulary

NS = {**edm.NS, "xml": "http://www.w3.org/XML/1998/namespace"}
DEMO = PROJECT_ROOT / "samples" / "manifests"
DEMO_BASE = "http://127.0.0.1:8182"
IMAGES = "https://images.example.org/iiif"
RDF_ABOUT = f"{{{edm.NS['rdf']}}}about"
RDF_RESOURCE = f"{{{edm.NS['rdf']}}}resource"


@pytest.fixture(scope="module")
def validator(conformance_dir):
    return edm_validator(conformance_dir)


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "db.sqlite3") as store:
        yield store


def records(store, settings) -> dict[str, etree._Element]:
    """Every live record's EDM, by manifest key, after the follower caught up."""
    catalogue = Catalogue(settings)
    harvest.sync(store, catalogue)
    found = {}
    for record in store.harvest_records(0, store.harvest_position(), 1000):
        described = catalogue.describe(store, record.key)
        if not record.deleted:
            found[record.key] = catalogue.metadata(described, "edm")
    return found


def resources(record: etree._Element, path: str) -> list[str]:
    return [e.get(RDF_RESOURCE) for e in record.xpath(path, namespaces=NS)]


def texts(record: etree._Element, path: str) -> list[str]:
    return [e.text for e in record.xpath(path, namespaces=NS)]


def test_the_validation_catches_what_europeana_rejects(validator, store, config):
    document = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/broken.json")
    enrich(store, document, [(0, "dog", 0.9, (10, 10, 100, 100))], config)
    record = records(store, config)
    (good,) = record.values()
    assert validator.errors(good) == []
    untitled = etree.fromstring(etree.tostring(good))
    for title in untitled.xpath("//dc:title", namespaces=NS):
        title.getparent().remove(title)
    assert any("dc:title" in error for error in validator.errors(untitled))  # Schematron's rule
    typed = etree.fromstring(etree.tostring(good))
    typed.xpath("//edm:type", namespaces=NS)[0].text = "PICTURE"
    assert any(error.startswith("XSD") for error in validator.errors(typed))


def test_the_demo_manifests_enriched_by_the_demo_model_give_valid_records(validator, store, config, sample_server,
                                                                          demo_detector):
    settings = config(weights=str(DEMO_WEIGHTS), tiled="off")
    canvases = {}
    with Fetcher(settings) as fetcher:
        enricher = Enricher(settings, detector=demo_detector, fetcher=fetcher)
        for name in ("demo-v3.json", "demo-v2.json"):
            document = json.loads((DEMO / name).read_text().replace(DEMO_BASE, sample_server))
            manifest = parse_manifest(document, document.get("id") or document["@id"])
            result = enricher.enrich(parse_manifest(scenes_only(document), manifest.url))  # large.jpg needs tiling
            key = manifest_key(manifest.id)
            canvases[key] = len(manifest.canvases)
            store.save_manifest(key, manifest.id, manifest.url, manifest.label, document)
            for item in result.canvases:
                assert item.error is None, item.error
                store.replace_machine_annotations(key, item.canvas.id, enricher.generator.model_sha256, item.annotations)
    found = records(store, settings)
    assert set(found) == set(canvases)
    for key, record in found.items():
        assert validator.errors(record) == [], key
        subjects = resources(record, "//edm:ProvidedCHO/dc:subject")
        assert subjects and all(s.startswith("https://iconclass.org/") for s in subjects)
        assert len(resources(record, "//edm:WebResource/svcs:has_service")) == canvases[key]  # one per image
        assert set(resources(record, "//svcs:Service/dcterms:conformsTo")) == {edm.IIIF_IMAGE_API}
        levels = set(resources(record, "//svcs:Service/doap:implements"))
        assert levels and levels <= {"http://iiif.io/api/image/3/level2.json", "http://iiif.io/api/image/2/level2.json"}


def scenes_only(document: dict) -> dict:
    """DOCUMENT without its canvas of the large image (found only by tiling at full resolution)."""
    trimmed = json.loads(json.dumps(document))
    canvases = trimmed["items"] if "items" in trimmed else trimmed["sequences"][0]["canvases"]
    canvases[:] = [c for c in canvases if "large" not in json.dumps(c.get("label"))]
    return trimmed


def test_a_manifest_with_the_least_metadata_iiif_allows_gives_a_valid_record_that_says_what_it_lacks(
        validator, store, config):
    document = {
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/bare.json",
        "type": "Manifest", "label": {"none": ["Bare"]},
        "items": [{"id": "https://example.org/bare/c0", "type": "Canvas", "width": 400, "height": 300, "items": [
            {"id": "https://example.org/bare/c0/p", "type": "AnnotationPage", "items": [
                {"id": "https://example.org/bare/c0/a", "type": "Annotation", "motivation": "painting",
                 "body": {"id": "https://example.org/bare.jpg", "type": "Image"}, "target": "https://example.org/bare/c0"},
            ]}]}],
    }
    enrich(store, document, [(0, "horse", 0.8, (0, 0, 50, 50))], config)
    (record,) = records(store, config).values()
    assert validator.errors(record) == []
    assert record.xpath("//edm:ProvidedCHO/@rdf:about", namespaces=NS) == ["https://example.org/bare.json"]
    assert texts(record, "//dc:title") == ["Bare"] and record.xpath("//dc:title/@xml:lang", namespaces=NS) == []
    assert resources(record, "//ore:Aggregation/edm:isShownBy") == ["https://example.org/bare.jpg"]
    assert resources(record, "//ore:Aggregation/edm:rights") == ["http://rightsstatements.org/vocab/CNE/1.0/"]
    assert texts(record, "//ore:Aggregation/edm:dataProvider") == ["example.org"]
    assert texts(record, "//ore:Aggregation/edm:provider") == ["enricher"]
    provenance = " ".join(texts(record, "//dcterms:provenance"))
    for gap in ("no homepage and no EDM record", "no rights", "data provider"):
        assert gap in provenance
    assert record.xpath("//svcs:Service", namespaces=NS) == []  # no image service: none claimed


def test_the_object_is_the_providers_own(validator, store, config, tmp_path):
    rules = tmp_path / "aggregation.toml"
    rules.write_text("\n".join([
        'provider = "Example Aggregator"',
        'rights = "http://rightsstatements.org/vocab/InC/1.0/"',
        "[[objects]]",
        r"""manifest = '^https://museum\.example\.org/iiif/(?P<id>\w+)\.json$'""",
        'object = "https://museum.example.org/objects/{id}"',
        'data_provider = "Example Museum"',
    ]))
    settings = config(aggregation_file=str(rules))
    ruled = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://museum.example.org/iiif/m7.json")
    linked = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://other.example.org/m.json")
    linked.update({
        "seeAlso": [{"id": "https://other.example.org/edm/m.xml", "type": "Dataset", "format": "application/rdf+xml",
                     "profile": "http://www.europeana.eu/schemas/edm/"}],
        "homepage": [{"id": "https://other.example.org/objects/m", "type": "Text", "label": {"en": ["m"]}}],
        "rights": "https://creativecommons.org/licenses/by/4.0/",
        "provider": [{"id": "https://other.example.org", "type": "Agent", "label": {"en": ["Other Library"]}}],
        "summary": {"en": ["A summary"], "de": ["Eine Zusammenfassung"]},
    })
    paged = make_manifest(2, [("a", 800, 600)], IMAGES, manifest_id="https://third.example.org/m.json")
    paged["related"] = {"@id": "https://third.example.org/page/m", "format": "text/html"}
    keys = {name: enrich(store, doc, [(0, "cup", 0.9, (1, 1, 20, 20))], settings)[0]
            for name, doc in (("ruled", ruled), ("linked", linked), ("paged", paged))}
    found = records(store, settings)
    for record in found.values():
        assert validator.errors(record) == []
    about = {name: found[key].xpath("//edm:ProvidedCHO/@rdf:about", namespaces=NS)[0] for name, key in keys.items()}
    assert about == {"ruled": "https://museum.example.org/objects/m7", "linked": "https://other.example.org/edm/m.xml",
                     "paged": "https://third.example.org/page/m"}
    assert texts(found[keys["ruled"]], "//edm:dataProvider") == ["Example Museum"]
    assert texts(found[keys["ruled"]], "//edm:provider") == ["Example Aggregator"]
    assert resources(found[keys["ruled"]], "//ore:Aggregation/edm:rights") == ["http://rightsstatements.org/vocab/InC/1.0/"]
    linked_record = found[keys["linked"]]
    assert resources(linked_record, "//ore:Aggregation/edm:rights") == ["http://creativecommons.org/licenses/by/4.0/"]
    assert texts(linked_record, "//edm:dataProvider") == ["Other Library"]
    assert resources(linked_record, "//ore:Aggregation/edm:isShownAt") == ["https://other.example.org/objects/m"]
    assert sorted(linked_record.xpath("//dc:description/@xml:lang", namespaces=NS)) == ["de", "en"]
    provenance = texts(linked_record, "//dcterms:provenance")
    assert len(provenance) == 2 and provenance[0].startswith("The dc:subject concepts")  # nothing was lacking


def test_subjects_are_what_curators_accept_and_what_reaches_the_threshold(validator, store, config):
    settings = config(aggregation_threshold=0.6)
    document = make_manifest(3, [("a", 800, 600), ("b", 800, 600)], IMAGES, manifest_id="https://example.org/s.json")
    key, manifest, made = enrich(store, document, [
        (0, "dog", 0.9, (0, 0, 50, 50)),      # pending above the threshold: a subject, not verified
        (0, "horse", 0.3, (100, 0, 50, 50)),  # pending below: not yet
        (0, "bird", 0.2, (200, 0, 50, 50)),   # accepted though low: a subject, verified
        (1, "cup", 0.95, (0, 0, 50, 50)),     # rejected: never
        (1, "clock", 0.9, (100, 0, 50, 50)),  # calibrated down below the threshold
    ], settings)
    by_class = {a["body"][0]["value"]: a["id"] for a in made}
    judge(store, key, by_class["bird"], "accepted")
    judge(store, key, by_class["cup"], "rejected")
    store.save_calibration("cal1", GENERATOR.model_sha256, key, "platt", {"classes": {"clock": {"a": 1.0, "b": -4.0}}})
    store.create(key, tag(f"{by_class['dog']}-t", manifest.canvases[1].id, "Buch", "de"), "curator")  # a person: book
    (record,) = records(store, settings).values()
    assert validator.errors(record) == []
    subjects = set(resources(record, "//edm:ProvidedCHO/dc:subject"))
    uri = {name: iconclass_of(name) for name in ("dog", "bird", "book")}
    assert subjects == {uri["dog"], uri["bird"], uri["book"]}
    provenance = texts(record, "//dcterms:provenance")
    assert any("heritage-yolo.pt" in s and GENERATOR.model_sha256 in s and "2026-01-01T00:00:00Z" in s for s in provenance)
    said = {s.split(" (")[0].removeprefix("dc:subject "): s.split(") ", 1)[1] for s in provenance
            if s.startswith("dc:subject ")}
    assert said == {uri["bird"]: "was verified by a person.", uri["book"]: "was verified by a person.",
                    uri["dog"]: "was not verified by a person; machine confidence 0.90."}


def iconclass_of(name: str) -> str:
    return next(c.uri for c in Vocabulary.load().classes[name].concepts if c.scheme == "iconclass")


def test_concepts_carry_every_label_their_broader_chain_and_wikidata(validator, store, config):
    document = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/dog.json")
    enrich(store, document, [(0, "dog", 0.9, (0, 0, 50, 50)), (0, "horse", 0.9, (60, 0, 50, 50))], config)
    (record,) = records(store, config).values()
    assert validator.errors(record) == []
    concepts = {c.get(RDF_ABOUT): c for c in record.xpath("//skos:Concept", namespaces=NS)}
    chain = ["https://iconclass.org/34B11", "https://iconclass.org/34B1", "https://iconclass.org/34B",
             "https://iconclass.org/34", "https://iconclass.org/3"]
    assert set(chain) <= set(concepts)
    for narrower, broader in zip(chain, chain[1:]):
        assert resources(concepts[narrower], "skos:broader") == [broader]
    assert resources(concepts[chain[-1]], "skos:broader") == []
    labels = {c.get(f"{{{NS['xml']}}}lang"): c.text for c in concepts[chain[0]].xpath("skos:prefLabel", namespaces=NS)}
    assert labels == {"en": "dog", "de": "Hund", "fr": "chien"}  # every language the vocabulary has for it
    assert {c.get(f"{{{NS['xml']}}}lang") for c in concepts[chain[3]].xpath("skos:prefLabel", namespaces=NS)} == {
        "en", "de", "fr", "nl"}
    assert resources(concepts[chain[0]], "skos:exactMatch") == ["http://www.wikidata.org/entity/Q144"]
    assert texts(concepts[chain[0]], "skos:notation") == ["34B11"]
    wikidata = [s for s in resources(record, "//dc:subject") if "wikidata" in s]
    assert wikidata == []  # Europeana would take a Wikidata item in dc:subject for an agent
    assert len(concepts) == len(record.xpath("//skos:Concept", namespaces=NS))  # each concept once


def test_a_bad_aggregation_file_is_named(tmp_path, config):
    cases = {
        "bad.toml": ("[[objects]]\nmanifest = '('\n", "not a regular expression"),
        "group.toml": ("[[objects]]\nmanifest = '^x'\nobject = 'https://o/{id}'\n", "does not capture"),
        "rights.toml": ('rights = "https://example.org/my-licence"\n', "not a rights statement"),
        "set.toml": ("[[sets]]\nspec = 'a b'\nmanifests = ['x']\n", "spec"),
        "json.json": ("{", "cannot read"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            Catalogue(config(aggregation_file=str(path)))
        assert message in str(caught.value) and str(path) in str(caught.value), name
