"""Schemathesis against ``/openapi.json`` of the running service: every route and method, without a token
and with one, in its coverage, fuzzing and stateful phases, on a store a real job seeded (the demo
detector's annotations on a demo image, a curator's verdicts, an evaluation and its calibration), so the
generated requests reach real data as well as missing data.

Checks: no 5xx, every response in the schema (status, content type, body), and our own (see
schemathesis_hooks.py): no body shows a stack trace or a Python file's path.
In-suite it generates a few cases per operation with a fixed seed; FUZZ_EXAMPLES sets the
cases per operation and a random seed (benchmarks/fuzz_long.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import unavailable
from factories import make_manifest
from fuzzing import LONG
from webclient import SECRET, Client, LiveServer, run_job

from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS
from enricher.errors import InvalidField
from enricher.imageserver import serve_images
from enricher.review import build_exhaustive, build_verdict

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,no_python_internals"
IN_SUITE = 1  # cases per operation and phase in the suite (the coverage phase adds its own)
SEED = 20261202
CURATOR = {"type": "Person", "nickname": "curator"}
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def service(tmp_path_factory, _stub_server):
    """A live service whose store a job with the demo weights filled, then reviewed and evaluated by a
    curator; its worker stopped afterwards, so the jobs the fuzzer posts stay queued and fetch nothing."""
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu", "batch": 1,
                "write_rate": 0, "job_rate": 0}
    with serve_images(DEMO_IMAGES) as images:
        document = make_manifest(3, [("scene-1", 1200, 900), ("scene-2", 1200, 900)], f"{images}/iiif/3")
        url = _stub_server.json("/fuzz-scenes.json", json.dumps(document))
        server = LiveServer(tmp_path_factory.mktemp("fuzz-openapi"), **settings)
        try:
            with Client(server) as client:
                job = run_job(client, {"manifest": url})
                assert job["state"] == "done" and job["results"], job
                server.data = _review(client, job)
            server.app.extensions["enricher.jobs"].stop()
            yield server
        finally:
            server.close()


def _review(client: Client, job: dict) -> dict:
    """Accept the first detection, state the first canvas exhaustively reviewed, evaluate; return the
    identifiers the fuzzer is told about."""
    (result,) = job["results"]
    container = client.get(result["annotations"], headers={"Prefer": 'return=representation; include="http://www.w3.org/ns/oa#PreferContainedDescriptions"'}).json()
    annotations = container["first"]["items"]
    assert annotations, container
    key = result["annotations"].rstrip("/").rsplit("/", 2)[-2]
    first = annotations[0]
    canvas = first["target"]["source"]
    canvas_id, manifest_id = canvas["id"], canvas["partOf"][0]["id"]
    verdicts = f"/{key}/verdicts/"
    json_type = {"Content-Type": "application/json"}
    accepted = client.post(verdicts, build_verdict(verdict_id="v", target=first, verdict="accepted", creator=CURATOR,
                                                   created="2026-12-02T00:00:00Z"), headers=json_type)
    assert accepted.status_code == 201, accepted.text
    classes = {body["value"] for a in annotations for body in a["body"] if body.get("purpose") == "tagging"}
    exhaustive = client.post(verdicts, build_exhaustive(verdict_id="e", canvas_id=canvas_id, manifest_id=manifest_id,
                                                        classes=classes, creator=CURATOR, created="2026-12-02T00:00:00Z"),
                             headers=json_type)
    assert exhaustive.status_code == 201, exhaustive.text
    evaluation = client.post(f"/{key}/evaluations", {"threshold": 0.25}, headers=json_type)
    assert evaluation.status_code == 201, evaluation.text
    head = next(node for node in evaluation.json()["@graph"] if node["id"] == evaluation.headers["Location"])
    return {
        "key": [key], "aid": [tail(a["id"]) for a in annotations[:5]], "vid": [tail(accepted.headers["Location"]), tail(exhaustive.headers["Location"])],
        "job_id": [tail(job["id"])], "evaluation_id": [tail(evaluation.headers["Location"])],
        "calibration_id": [tail(head["calibration"])], "index": [0, 1],
    }


def tail(iri: str) -> str:
    """The last path segment of IRI."""
    return iri.rstrip("/").rsplit("/", 1)[-1]


def _config(folder: Path, data: dict) -> Path:
    """A schemathesis.toml that names the seeded identifiers for most path parameters (the rest are generated)."""
    lines = []
    for name, values in data.items():
        lines += [f"[dictionaries.{name.replace('_', '-')}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name.replace("_", "-")}", probability = 0.8 }}' for name in data]
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fuzz(server: LiveServer, folder: Path, *, token: bool, examples: int, seed: int | None) -> dict:
    """Run the schemathesis CLI against SERVER; return its JSON report. One worker: with two threads
    Hypothesis's lambda descriptions hit a CPython 3.11 ast.parse race (SystemError)."""
    report = folder / f"report-{'token' if token else 'anonymous'}.json"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(_config(folder, server.data)), "run",
               f"{server.url}openapi.json", "--checks", CHECKS, "--max-examples", str(examples), "--workers", "1",
               "--phases", "coverage,fuzzing,stateful", "--report", "json", "--report-json-path", str(report),
               "--no-color", "--output-truncate", "false", "--suppress-health-check", "all"]
    command += ["--seed", str(seed)] if seed is not None else []
    command += ["--header", f"Authorization: Bearer {SECRET}"] if token else []
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=3600, check=False)
    assert report.is_file(), done.stdout[-5000:] + done.stderr[-5000:]
    found = json.loads(report.read_text())
    print(f"schemathesis {'with' if token else 'without'} a token: {found['test_cases']}")
    assert not found["failures"] and not found["errors"] and done.returncode == 0, done.stdout[-20000:]
    return found


@pytest.mark.parametrize("token", [False, True], ids=["anonymous", "curator"])
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(service, tmp_path, token):
    found = fuzz(service, tmp_path, token=token, examples=LONG or IN_SUITE, seed=None if LONG else SEED)
    assert found["operations"]["tested"] == found["operations"]["total"] >= 60
    assert found["test_cases"]["generated"] >= 500


def test_a_problem_names_the_whole_body_with_an_empty_pointer():
    """Schemathesis found a 422 without its required pointer: "" (the whole body) was dropped as false."""
    assert InvalidField("the request body must be a JSON object", pointer="").problem()["pointer"] == ""
