"""Provenance as PROV-O: a job's run is a ``prov:Activity`` that ``prov:used`` the model (name and
SHA-256 of the weights as given, the runtime that ran them: PyTorch, or the export OpenVINO or ONNX Runtime
ran, with its version) and the thresholds it ran with, ``prov:wasAssociatedWith`` the
enricher (its version), with start and end times; each machine annotation it made
``prov:wasGeneratedBy`` it. The run is served at ``/runs/{job_id}`` in every RDF format.

``describe`` records what a run used when the job starts (the store keeps it with the job);
``run_document`` builds the run's JSON-LD from the stored job.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from . import __version__, urls
from .annotate import SOFTWARE
from .jsonld import ENRICHER_NS
from .store import StoredJob

PROV = "http://www.w3.org/ns/prov#"
# the thresholds a run records, setting -> our term (contexts/ns.ttl)
THRESHOLDS = {"conf": "confidenceThreshold", "iou": "iouThreshold", "imgsz": "imageSize", "max_det": "maxDetections",
              "tiled": "tiled"}
TYPED = {  # term -> (IRI, datatype, or @id for a node)
    "used": ("prov:used", "@id"), "wasAssociatedWith": ("prov:wasAssociatedWith", "@id"),
    "seeAlso": ("rdfs:seeAlso", "@id"), "startedAtTime": ("prov:startedAtTime", "xsd:dateTime"),
    "endedAtTime": ("prov:endedAtTime", "xsd:dateTime"),
    "confidenceThreshold": ("enricher:confidenceThreshold", "xsd:double"),
    "iouThreshold": ("enricher:iouThreshold", "xsd:double"), "imageSize": ("enricher:imageSize", "xsd:integer"),
    "maxDetections": ("enricher:maxDetections", "xsd:integer"),
}
CONTEXT = {
    "prov": PROV, "enricher": ENRICHER_NS, "xsd": "http://www.w3.org/2001/XMLSchema#",
    "schema": "https://schema.org/", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "id": "@id", "type": "@type",
    "Activity": "prov:Activity", "Entity": "prov:Entity", "SoftwareAgent": "prov:SoftwareAgent",
    "label": "rdfs:label", "name": "schema:name", "softwareVersion": "schema:softwareVersion",
    "model": "enricher:model", "modelSha256": "enricher:modelSha256", "runtime": "enricher:runtime",
    "tiled": "enricher:tiled",
    **{term: {"@id": iri, "@type": datatype} for term, (iri, datatype) in TYPED.items()},
}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def runtime(detector) -> str:
    """What runs DETECTOR's model: the inference runtime and ultralytics with their versions, Python's
    and the device (``openvino 2025.1.0; ultralytics 8.3.100; Python 3.11.7; device cpu``)."""
    parts = [detector.runtime.describe(), *(f"ultralytics {v}" for v in [_version("ultralytics")] if v)]
    return "; ".join([*parts, f"Python {platform.python_version()}", f"device {detector.device}"])


def describe(enricher, config) -> dict[str, Any]:
    """What a run with ENRICHER (its loaded model) and CONFIG (the job's thresholds) uses: the record
    the store keeps with the job."""
    detector = enricher.detector
    return {"softwareVersion": __version__, "model": detector.name, "modelSha256": detector.sha256,
            "runtime": runtime(detector), "thresholds": {name: getattr(config, name) for name in THRESHOLDS}}


def run_document(job: StoredJob, base: str) -> dict:
    """The PROV-O JSON-LD of JOB's run: the activity, what it used and who ran it."""
    run = urls.run_url(base, job.id)
    used = job.provenance or {}
    thresholds = {THRESHOLDS[name]: value for name, value in used.get("thresholds", {}).items()
                  if name in THRESHOLDS and value is not None}
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "id": run,
        "type": "Activity",
        "label": f"{SOFTWARE} job {job.id}",
        "seeAlso": urls.job_url(base, job.id),
        "wasAssociatedWith": {"id": f"{run}#software", "type": "SoftwareAgent", "name": SOFTWARE,
                              "softwareVersion": used.get("softwareVersion", __version__)},
    }
    if used.get("modelSha256"):
        document["used"] = [
            {"id": f"{run}#model", "type": "Entity", "model": used["model"], "modelSha256": used["modelSha256"],
             "runtime": used["runtime"]},
            {"id": f"{run}#thresholds", "type": "Entity", "label": "thresholds", **thresholds},
        ]
    if job.started:
        document["startedAtTime"] = job.started
    if job.finished:
        document["endedAtTime"] = job.finished
    return document


def generated_by(annotations: list[dict], base: str, job_id: str) -> list[dict]:
    """ANNOTATIONS, each saying the run of job JOB_ID generated it."""
    run = urls.run_url(base, job_id)
    return [{**annotation, "wasGeneratedBy": run} for annotation in annotations]
