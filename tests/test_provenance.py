"""Provenance as PROV-O after a real job (the demo weights on a sample scene, over real HTTP): each
machine annotation names its run, the run is served in every RDF format meaning one graph, and run and
annotations pass shapes/provenance.ttl; broken runs are reported by the rule they break."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from importlib import metadata

import pytest
from conftest import unavailable
from factories import make_manifest
from pyshacl import validate
from rdflib import Graph, Namespace, URIRef
from rdflib.compare import isomorphic
from webclient import Client, live_server, run_job

from enricher import rdf
from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS, PROVENANCE_SHAPES
from enricher.imageserver import serve_images
from enricher.jsonld import to_graph

PROV = Namespace("http://www.w3.org/ns/prov#")
SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES = "https://w3id.org/enricher/shapes#"
# format name -> rdflib parser name
PARSERS = {"turtle": "turtle", "ntriples": "nt", "nquads": "nquads", "trig": "trig", "rdfxml": "xml", "jsonld": "json-ld"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, _stub_server) -> Iterator[tuple[Client, dict, list[dict]]]:
    """(client, finished job, the served machine annotations) of one real job."""
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    with serve_images(DEMO_IMAGES) as images:
        document = make_manifest(3, [("scene-1", 1200, 900)], f"{images}/iiif/3")
        url = _stub_server.json("/provenance.json", json.dumps(document))
        settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu",
                    "batch": 1, "conf": 0.3}
        with live_server(tmp_path_factory.mktemp("prov"), **settings) as server, Client(server) as client:
            job = run_job(client, {"manifest": url, "iou": 0.45})
            assert job["state"] == "done", job
            container = client.get(job["results"][0]["annotations"]).json()
            annotations = [client.get(item["id"]).json() for item in container["first"]["items"]]
            assert annotations
            yield client, job, annotations


def run_graph(client: Client, job: dict, fmt: str = "turtle") -> Graph:
    response = client.get(job["id"].replace("/jobs/", "/runs/"), params={"format": fmt})
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.text, format=PARSERS[fmt])


def violations(data: Graph) -> set[str]:
    shapes = Graph().parse(PROVENANCE_SHAPES)
    conforms, report, text = validate(data, shacl_graph=shapes, inference="none")
    found = {str(report.value(r, SH.sourceShape)).removeprefix(SHAPES) for r in report.subjects(SH.resultSeverity, SH.Violation)}
    assert conforms == (not found), text
    return found


def test_each_machine_annotation_names_its_run(ran):
    _, job, annotations = ran
    run = job["id"].replace("/jobs/", "/runs/")
    assert {a["wasGeneratedBy"] for a in annotations} == {run}
    triples = Graph().parse(data=rdf.annotation_nquads(annotations[0], None), format="nt")
    assert (URIRef(annotations[0]["id"]), PROV.wasGeneratedBy, URIRef(run)) in triples


def test_the_run_says_what_it_used_in_every_format(ran, conformance_dir):
    client, job, _ = ran
    graphs = {fmt: run_graph(client, job, fmt) for fmt in PARSERS}
    assert all(isomorphic(graphs["turtle"], graph) for graph in graphs.values()), sorted(graphs)
    native = client.get(job["id"].replace("/jobs/", "/runs/")).json()
    assert isomorphic(to_graph(native, conformance_dir), graphs["turtle"])
    run = URIRef(native["id"])
    graph = graphs["turtle"]
    assert (run, None, PROV.Activity) in graph
    model = next(e for e in graph.objects(run, PROV.used) if (e, URIRef(rdf.ENRICHER_NS + "modelSha256"), None) in graph)
    sha = str(graph.value(model, URIRef(rdf.ENRICHER_NS + "modelSha256")))
    assert sha == next(a for a in ran[2])["generator"]["modelSha256"]
    thresholds = {str(p).removeprefix(rdf.ENRICHER_NS): o.toPython() for e in graph.objects(run, PROV.used)
                  for p, o in graph.predicate_objects(e) if str(p).startswith(rdf.ENRICHER_NS)}
    assert thresholds["confidenceThreshold"] == 0.3 and thresholds["iouThreshold"] == 0.45
    assert "ultralytics" in thresholds["runtime"] and "device cpu" in thresholds["runtime"]
    # the suite runs PyTorch (tests/conftest.py); the runtime that ran the model comes first, with its version
    assert thresholds["runtime"].startswith(f"torch {metadata.version('torch')}; "), thresholds["runtime"]
    for key, predicate in (("started", PROV.startedAtTime), ("finished", PROV.endedAtTime)):
        assert graph.value(run, predicate).toPython() == datetime.fromisoformat(job[key].replace("Z", "+00:00"))


def test_run_and_annotations_pass_the_shapes(ran):
    client, job, annotations = ran
    data = run_graph(client, job, "ntriples")
    for annotation in annotations:
        data.parse(data=rdf.annotation_nquads(annotation, None), format="nt")
    assert violations(data) == set()


@pytest.mark.parametrize("predicate, shape", [
    (PROV.startedAtTime, "run-started"),
    (PROV.wasAssociatedWith, "run-agent"),
    (URIRef(rdf.ENRICHER_NS + "modelSha256"), "run-model"),
    (URIRef(rdf.ENRICHER_NS + "confidenceThreshold"), "run-thresholds"),
])
def test_a_broken_run_is_reported_by_the_rule_it_breaks(ran, predicate, shape):
    client, job, _ = ran
    data = run_graph(client, job)
    data.remove((None, predicate, None))
    assert violations(data) == {shape}


def test_an_unknown_run_is_not_found(ran):
    client, job, _ = ran
    assert client.get(job["id"].replace("/jobs/", "/runs/") + "x").status_code == 404
