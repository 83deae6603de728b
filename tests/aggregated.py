"""Helpers for the aggregator tests: Europeana's own validation of EDM records (its XML Schema with
lxml, its Schematron rules with Saxon), and a store filled with manifests, machine annotations and
curators' verdicts as a job and the review page make them."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from enricher.annotate import Generator, build_annotation, manifest_key
from enricher.detect import Detection
from enricher.manifest import Manifest, parse_manifest
from enricher.review import build_verdict, version_of
from enricher.vocab import Vocabulary

SHA = "5e" * 32
GENERATOR = Generator("0.1.0", "heritage-yolo.pt", SHA)
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
CURATOR = {"type": "Person", "nickname": "curator"}


class EDMValidator:
    """Europeana's validation of a provider's record: EDM.xsd (external profile) and schematron.xsl."""

    def __init__(self, folder: Path):
        from saxonche import PySaxonProcessor

        self.schema = etree.XMLSchema(etree.parse(str(folder / "EDM.xsd")))
        self._saxon = PySaxonProcessor(license=False)
        self._rules = self._saxon.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(folder / "schematron" / "schematron.xsl"))

    def errors(self, record: etree._Element) -> list[str]:
        """What the schema and the rules find wrong with RECORD (rdf:RDF); empty when it passes."""
        document = etree.ElementTree(etree.fromstring(etree.tostring(record)))  # on its own, as Europeana reads it
        found = [] if self.schema.validate(document) else [f"XSD: {e.message}" for e in self.schema.error_log]
        node = self._saxon.parse_xml(xml_text=etree.tostring(document, encoding="unicode"))
        report = etree.fromstring(self._rules.transform_to_string(xdm_node=node).encode("utf-8"))
        for failed in report.iter(f"{SVRL}failed-assert"):
            found.append("Schematron: " + " ".join("".join(failed.itertext()).split()))
        return found


def edm_validator(conformance_dir: Path) -> EDMValidator:
    """The validator over ../shared/conformance/edm; fail under CI when it is missing, else skip."""
    from conftest import unavailable

    folder = conformance_dir / "edm"
    if not (folder / "EDM.xsd").is_file() or not (folder / "schematron" / "schematron.xsl").is_file():
        unavailable(f"Europeana's EDM schemas are missing: looked in {folder}")
    try:
        return EDMValidator(folder)
    except ImportError:
        unavailable("saxonche is not installed (pip install saxonche): it runs Europeana's Schematron rules")


def enrich(store, document: dict, detections, config, generator: Generator = GENERATOR,
           created: str = "2026-01-01T00:00:00Z") -> tuple[str, Manifest, list[dict]]:
    """Store DOCUMENT (a manifest) and the machine annotations of DETECTIONS, (canvas index, class, score,
    box) each, as a job would; return the key, the parsed manifest and the annotations per canvas."""
    manifest = parse_manifest(document, document.get("id") or document["@id"])
    key = manifest_key(manifest.id)
    store.save_manifest(key, manifest.id, manifest.url, manifest.label, document)
    vocabulary = Vocabulary.load(config.vocab)
    made = []
    for index, canvas in enumerate(manifest.canvases):
        annotations = [
            build_annotation(canvas=canvas, manifest=manifest, detection=Detection(label, score, box),
                             mapping=vocabulary.lookup(label), generator=generator, created=created, config=config)
            for n, label, score, box in detections if n == index
        ]
        store.replace_machine_annotations(key, canvas.id, generator.model_sha256, annotations)
        made += annotations
    return key, manifest, made


def judge(store, key: str, annotation_id: str, verdict: str) -> None:
    """Record a curator's VERDICT (accepted, rejected) on a machine annotation, pinned to its version."""
    target = store.get(annotation_id).document
    document = build_verdict(verdict_id=f"{annotation_id}-{verdict}-{store.last_change()}", target=target,
                             verdict=verdict, creator=CURATOR, created="2026-02-01T00:00:00Z")
    store.add_verdict(key, document, "curator", target=annotation_id, canvas_id=None, judgement=verdict,
                      version=version_of(target))


def tag(annotation_id: str, canvas_id: str, text: str, language: str = "en") -> dict:
    """A person's tag on a canvas region, as the annotation protocol stores one."""
    return {
        "id": annotation_id, "type": "Annotation", "motivation": "tagging", "creator": CURATOR,
        "created": "2026-02-02T00:00:00Z",
        "body": [{"type": "TextualBody", "value": text, "language": language, "purpose": "tagging"}],
        "target": {"type": "SpecificResource", "source": {"id": canvas_id, "type": "Canvas"},
                   "selector": {"type": "FragmentSelector", "value": "xywh=5,5,50,50"}},
    }
