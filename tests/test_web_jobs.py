"""Jobs over real HTTP: queue (202 and Location), follow, list, cancel; and one job run end to end by
the in-process runner with the demo weights on the sample images, its results served as IIIF."""

from __future__ import annotations

import json

import pytest
from conftest import unavailable
from factories import load_fixture, make_manifest
from webclient import Client, live_server, run_job

from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS
from enricher.imageserver import serve_images

JOB = {"manifest": "https://example.org/iiif/manifest.json", "canvases": [0, "https://example.org/c/2"],
       "region": "xywh=0,0,500,400", "conf": 0.4, "iou": 0.6, "tiled": "off"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-jobs")) as server:
        yield server


def test_a_job_is_queued_and_followed(client, server):
    response = client.post("/jobs", JOB)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"] == job["id"] and job["id"].startswith(server.url + "jobs/")
    assert job["state"] == "queued" and job["params"] == JOB
    assert job["progress"] == {"done": 0, "total": 0} and job["errors"] == [] and job["results"] == []
    followed = client.get(job["id"])
    assert followed.status_code == 200 and followed.json() == job
    listed = client.get("/jobs").json()["jobs"]
    assert listed[0] == job


def test_jobs_are_listed_newest_first(client):
    first = client.post("/jobs", {"manifest": "https://example.org/one.json"}).json()["id"]
    second = client.post("/jobs", {"manifest": "https://example.org/two.json"}).json()["id"]
    ids = [job["id"] for job in client.get("/jobs").json()["jobs"]]
    assert ids.index(second) < ids.index(first)


def test_a_queued_job_can_be_cancelled(client):
    job = client.post("/jobs", JOB).json()
    assert client.request("DELETE", job["id"]).status_code == 401
    response = client.delete(job["id"])
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled" and response.json()["finished"]
    again = client.delete(job["id"])
    assert again.json()["state"] == "cancelled" and again.json()["finished"] == response.json()["finished"]


def test_an_unknown_job_is_not_found(client):
    for response in (client.get("/jobs/nope"), client.delete("/jobs/nope")):
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"


def test_a_job_runs_and_its_results_are_served(tmp_path, stub, conformance_dir):
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    with serve_images(DEMO_IMAGES) as images:
        document = make_manifest(3, [("scene-1", 1200, 900)], f"{images}/iiif/3")
        url = stub.json("/scenes.json", json.dumps(document))
        settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu", "batch": 1}
        with live_server(tmp_path, **settings) as server, Client(server) as client:
            job = run_job(client, {"manifest": url})
            assert job["state"] == "done", job
            assert job["progress"] == {"done": 1, "total": 1} and job["errors"] == []
            (result,) = job["results"]
            container = client.get(result["annotations"]).json()
            assert container["total"] > 0
            manifest = client.get(result["manifest"]).json()
            served = 0
            for canvas in manifest["items"]:
                page = client.get(canvas["annotations"][-1]["id"]).json()
                assert all(b["value"] for a in page["items"] for b in a["body"])
                served += len(page["items"])
            assert served == container["total"]


def test_a_job_enriches_the_canvases_with_images_and_lists_the_others(tmp_path, stub):
    """One canvas without an image failed the whole job with "internal error (TypeError)" before."""
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    with serve_images(DEMO_IMAGES) as images:
        url = stub.json("/mixed.json", json.dumps(load_fixture("mixed-canvases.json", images)))
        settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu", "batch": 1}
        with live_server(tmp_path, **settings) as server, Client(server) as client:
            job = run_job(client, {"manifest": url})
            assert job["state"] == "done" and job["error"] is None, job
            assert job["progress"] == {"done": 7, "total": 7}
            errors = {error["canvas"].rsplit("/", 1)[1]: error["error"] for error in job["errors"]}
            assert errors.keys() == {"no-body"}
            assert errors["no-body"].startswith("canvas https://example.org/fixtures/mixed/canvas/no-body at /items/1: ")
            skipped = {canvas["canvas"].rsplit("/", 1)[1]: canvas["reason"] for canvas in job["skipped"]}
            assert skipped.keys() == {"sound", "video", "text", "empty"}
            assert skipped["sound"] == "nothing to look at: it paints Sound"
            manifest = client.get(job["results"][0]["manifest"]).json()
            found = [len(client.get(canvas["annotations"][-1]["id"]).json()["items"]) for canvas in manifest["items"]]
            assert found[0] > 0 and found[6] > 0 and found[1:6] == [0] * 5


def test_a_job_whose_manifest_holds_more_canvases_than_the_cap_fails_naming_both(tmp_path, stub):
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    # the images are never asked for: the job fails before its first canvas
    document = make_manifest(3, [("scene-1", 1200, 900)] * 3, "https://images.example.org/iiif")
    url = stub.json("/three-canvases.json", json.dumps(document))
    settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu",
                "max_canvases": 2}
    with live_server(tmp_path, **settings) as server, Client(server) as client:
        job = run_job(client, {"manifest": url})
        assert client.get("/annotations/").json()["total"] == 0
    assert job["state"] == "failed", job
    assert "has 3 canvases, more than the 2 a job may enrich (setting max_canvases)" in job["error"], job["error"]
    assert url in job["error"] and job["results"] == [] and job["progress"] == {"done": 0, "total": 0}
