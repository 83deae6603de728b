"""Publish an evaluation as linked data with the W3C Data Quality Vocabulary (JSON-LD and Turtle).

Shape (``E`` = ``{base}evaluations/{id}``; metric IRIs and their definitions: vocab/metrics.ttl)::

    E            a dqv:QualityMeasurementDataset; dcterms:created; enricher:threshold; enricher:iouThreshold;
                 prov:wasDerivedFrom the ground truth (verdict containers or the COCO file);
                 enricher:calibration the calibration fitted in the same run
    E#subject    a dcat:Dataset: the machine annotations of one model (prov:wasAttributedTo an
                 as:Application with enricher:model and enricher:modelSha256, as on each annotation's
                 generator) on the manifests it names (dcterms:source): the model x collection measured
    E#class-dog  a dcat:Dataset; dcterms:isPartOf E#subject; dcterms:subject the COCO class concept;
                 enricher:falsePositiveExample / enricher:missedExample annotation IRIs
    E#dog-precision  a dqv:QualityMeasurement; dqv:computedOn E#class-dog (or E#subject for all
                 classes); dqv:isMeasurementOf enricher:precision; dqv:value; qb:dataSet E

The stored *record* (``make_record``) is plain JSON holding the evaluation; every rendering derives from it.
"""

from __future__ import annotations

from urllib.parse import quote

from .evaluate import ALL, IOU, ClassMetrics, Evaluation
from .jsonld import ENRICHER_CONTEXT, ENRICHER_NS, to_graph
from .review import class_iri

DIGITS = 6  # rdflib writes doubles in Turtle with 7 significant digits: 6 decimals survive the trip
# metric -> (ClassMetrics field, XSD datatype); the IRIs are enricher:{metric}
METRICS = {
    "precision": ("precision", "xsd:double"),
    "recall": ("recall", "xsd:double"),
    "averagePrecision50": ("ap50", "xsd:double"),
    "averagePrecision50to95": ("ap", "xsd:double"),
    "truePositives": ("tp", "xsd:integer"),
    "falsePositives": ("fp", "xsd:integer"),
    "falseNegatives": ("fn", "xsd:integer"),
    "expectedCalibrationError": ("ece", "xsd:double"),
}
CONTEXT = {
    "dqv": "http://www.w3.org/ns/dqv#",
    "dcat": "http://www.w3.org/ns/dcat#",
    "prov": "http://www.w3.org/ns/prov#",
    "qb": "http://purl.org/linked-data/cube#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "as": "http://www.w3.org/ns/activitystreams#",
    "id": "@id",
    "type": "@type",
    "QualityMeasurementDataset": "dqv:QualityMeasurementDataset",
    "QualityMeasurement": "dqv:QualityMeasurement",
    "Dataset": "dcat:Dataset",
    "Software": "as:Application",
    "computedOn": {"@id": "dqv:computedOn", "@type": "@id"},
    "isMeasurementOf": {"@id": "dqv:isMeasurementOf", "@type": "@id"},
    "value": "dqv:value",
    "dataSet": {"@id": "qb:dataSet", "@type": "@id"},
    "label": "rdfs:label",
    "title": "dcterms:title",
    "created": {"@id": "dcterms:created", "@type": "xsd:dateTime"},
    "source": {"@id": "dcterms:source", "@type": "@id", "@container": "@set"},
    "isPartOf": {"@id": "dcterms:isPartOf", "@type": "@id"},
    "wasAttributedTo": "prov:wasAttributedTo",
    "wasDerivedFrom": {"@id": "prov:wasDerivedFrom", "@type": "@id", "@container": "@set"},
    "threshold": {"@id": "enricher:threshold", "@type": "xsd:double"},
    "iouThreshold": {"@id": "enricher:iouThreshold", "@type": "xsd:double"},
    "canvasCount": {"@id": "enricher:canvasCount", "@type": "xsd:integer"},
    "calibration": {"@id": "enricher:calibration", "@type": "@id"},
    "falsePositiveExample": {"@id": "enricher:falsePositiveExample", "@type": "@id", "@container": "@set"},
    "missedExample": {"@id": "enricher:missedExample", "@type": "@id", "@container": "@set"},
}
PREFIXES = {"dqv": CONTEXT["dqv"], "dcat": CONTEXT["dcat"], "prov": CONTEXT["prov"], "qb": CONTEXT["qb"],
            "enricher": ENRICHER_NS, "dcterms": "http://purl.org/dc/terms/", "as": CONTEXT["as"]}


def make_record(
    evaluation: Evaluation,
    *,
    url: str,
    created: str,
    model_sha256: str,
    model_name: str,
    truth: list[str],
    calibration: dict | None = None,
) -> dict:
    """Return the stored form of an evaluation: its URL, provenance and the evaluation itself.

    TRUTH names where the ground truth came from (verdict container URLs or a COCO file's URI);
    CALIBRATION is ``{"id": url, "method": ..., "params": ...}`` when one was fitted.
    """
    return {
        "id": url, "created": created, "model": {"sha256": model_sha256, "name": model_name},
        "truth": list(truth), "calibration": calibration, "evaluation": evaluation.to_dict(),
    }


def class_node(url: str, label: str) -> str:
    """Return the IRI of the per-class subset of an evaluation (``all``: the whole model x collection)."""
    return f"{url}#subject" if label == ALL else f"{url}#class-{_slug(label)}"


def _slug(label: str) -> str:
    return quote(label.replace(" ", "_"), safe="")


def to_jsonld(record: dict) -> dict:
    """Render a record as a JSON-LD document (our context and an inline one for DQV terms)."""
    url = record["id"]
    evaluation = Evaluation.from_dict(record["evaluation"])
    model = record["model"]
    head = {
        "id": url, "type": "QualityMeasurementDataset", "created": record["created"],
        "title": f"Evaluation of {model['name']} on {len(evaluation.manifests)} manifest(s)",
        "threshold": evaluation.threshold, "iouThreshold": IOU, "canvasCount": evaluation.canvases,
        "wasDerivedFrom": record["truth"],
    }
    if record.get("calibration"):
        head["calibration"] = record["calibration"]["id"]
    subject = {
        "id": class_node(url, ALL), "type": "Dataset",
        "title": f"Annotations by {model['name']} on the evaluated canvases",
        "wasAttributedTo": {"type": "Software", "model": model["name"], "modelSha256": model["sha256"]},
        "source": list(evaluation.manifests),
    }
    graph = [head, subject, *_measurements(url, evaluation.overall)]
    for metrics in evaluation.classes:
        graph.append({
            "id": class_node(url, metrics.label), "type": "Dataset", "label": metrics.label,
            "isPartOf": class_node(url, ALL), "subject": class_iri(metrics.label),
            "falsePositiveExample": [e.annotation_id for e in metrics.false_positives],
            "missedExample": [e.annotation_id for e in metrics.misses],
        })
        graph.extend(_measurements(url, metrics))
    return {"@context": [ENRICHER_CONTEXT, CONTEXT], "@graph": graph}


def _measurements(url: str, metrics: ClassMetrics) -> list[dict]:
    prefix = "" if metrics.label == ALL else _slug(metrics.label) + "-"
    nodes = []
    for metric, (field, datatype) in METRICS.items():
        value = getattr(metrics, field)
        if value is None:  # undefined (no detections, or no truth): no measurement rather than a fake 0
            continue
        if datatype == "xsd:double":
            value = round(value, DIGITS)
        nodes.append({
            "id": f"{url}#{prefix}{metric}", "type": "QualityMeasurement",
            "computedOn": class_node(url, metrics.label), "isMeasurementOf": f"enricher:{metric}",
            "value": {"@value": value, "@type": datatype}, "dataSet": url,
        })
    return nodes


def to_turtle(record: dict) -> str:
    """Render a record as Turtle (through the JSON-LD, offline)."""
    graph = to_graph(to_jsonld(record), None)
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace)
    return graph.serialize(format="turtle")
