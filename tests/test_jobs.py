"""The background runner with the demo weights on real IIIF servers: progress, errors, overrides,
cancellation, the single-runner lock, and a job killed with SIGKILL that resumes with nothing lost and
nothing duplicated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import process_environment
from factories import make_manifest
from sampledata import SAMPLES, SCENES, TRUTH, specs

from enricher.annotate import manifest_key
from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.imageserver import write_static_tree
from enricher.jobs.thread import ThreadQueue
from enricher.pipeline import Enricher
from enricher.store import Store, open_store
from enricher.urls import container_url

BASE_URL = "https://enricher.test/"
# identifier -> sample image; "first" is the only one the gate lets through while closed
GATED_IMAGES = {"first": "scene-1.jpg", "second": "scene-2.jpg", "third": "scene-3.jpg", "fourth": "scene-4.jpg"}
WAIT_SECONDS = 120  # generous upper bounds for a loaded 2-core machine; reaching one fails the test


@pytest.fixture(scope="session")
def job_settings(config):
    """Settings of every runner here; batch 1 so each canvas commits on its own."""
    return config(weights=str(DEMO_WEIGHTS), base_url=BASE_URL, batch=1)


@pytest.fixture
def runner_for(job_settings, demo_detector, tmp_path):
    """Build ThreadQueues on a fresh database that share the session's loaded demo model; count model loads."""
    built: list[ThreadQueue] = []
    loads: list[int] = []

    def factory(config):
        loads.append(1)
        return Enricher(config, detector=demo_detector)

    def make(path: Path | None = None, **overrides) -> ThreadQueue:
        runner = ThreadQueue(job_settings.replace(**overrides), open_store(path or tmp_path / "enricher.sqlite3"), enricher_factory=factory)
        built.append(runner)
        return runner

    make.loads = loads
    yield make
    for runner in built:
        runner.stop(timeout=WAIT_SECONDS)
        runner.store.close()


class Gate:
    """A level-0 IIIF tree of the samples on loopback whose image requests (other than those of the
    identifier let through) wait until the gate opens; every path asked for is logged."""

    def __init__(self, root: Path):
        self.opened = threading.Event()
        self.allowed = ""
        self.requested: list[str] = []
        gate = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.requested.append(self.path)
                identifier = self.path.split("/")[2] if self.path.count("/") > 2 else ""
                if not self.path.endswith(".json") and identifier != gate.allowed:
                    gate.opened.wait(WAIT_SECONDS)
                try:
                    super().do_GET()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while it waited

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self, allowed: str) -> None:
        self.opened.clear()
        self.allowed = allowed

    def open(self) -> None:
        self.opened.set()

    def images_requested(self, identifier: str) -> list[str]:
        return [p for p in self.requested if p.startswith(f"/3/{identifier}/") and not p.endswith(".json")]


@pytest.fixture(scope="module")
def gate(tmp_path_factory) -> Iterator[Gate]:
    images, root = tmp_path_factory.mktemp("gated-images"), tmp_path_factory.mktemp("gated-tree")
    for identifier, name in GATED_IMAGES.items():
        shutil.copy(SAMPLES / name, images / f"{identifier}.jpg")
    gate = Gate(root)
    write_static_tree(images, root / "3", f"{gate.url}/3", "3.0")
    canvases = [(identifier, *spec[1:]) for identifier, spec in zip(GATED_IMAGES, specs(GATED_IMAGES.values()))]
    document = make_manifest(3, canvases, f"{gate.url}/3", manifest_id=f"{gate.url}/manifest.json", level=0)
    (root / "manifest.json").write_text(json.dumps(document))
    gate.open()
    yield gate
    gate.open()
    gate.server.shutdown()
    gate.server.server_close()


@pytest.fixture(scope="module")
def sample_manifest(sample_server, tmp_path_factory) -> str:
    """URL of a manifest of the scenes on the reference server, served from a file."""
    root = tmp_path_factory.mktemp("manifests")
    url_base = f"{sample_server}/iiif/3"
    document = make_manifest(3, specs(SCENES[:2]), url_base, manifest_id="https://example.org/scenes/manifest.json")
    path = root / "scenes.json"
    path.write_text(json.dumps(document))
    return str(path)


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)
    return value


def run_now(runner: ThreadQueue, params: dict):
    """Queue a job and run the queue in this thread; return the finished job."""
    job = runner.store.create_job(params)
    assert runner.acquire()
    runner.run_pending()
    return runner.store.job(job.id)


def annotation_ids(store: Store) -> list[str]:
    return sorted(a.id for a in store.page(None, 0, 100_000))


def test_a_job_stores_every_canvas_and_reports_progress(runner_for, sample_manifest):
    runner = runner_for()
    job = run_now(runner, {"manifest": sample_manifest})
    key = manifest_key("https://example.org/scenes/manifest.json")
    assert (job.state, job.done, job.total, job.errors, job.error) == ("done", 2, 2, [], None)
    assert job.manifests == [key] and job.started and job.finished
    store = runner.store
    assert store.manifest(key).label == "Test manifest"
    stored = store.page(key, 0, 1000)
    assert len(stored) >= 4 and {a.origin for a in stored} == {"machine"}
    assert all(a.id.startswith(container_url(BASE_URL, manifest_key("https://example.org/scenes/manifest.json"))) for a in stored)
    assert {a.canvas_id for a in stored} == {f"https://example.org/scenes/manifest/canvas/{n}" for n in (0, 1)}
    assert {c.kind for c in store.changes(0, 1000)} == {"Create"}


def test_a_rerun_changes_nothing_and_the_model_loads_once(runner_for, sample_manifest):
    runner = runner_for()
    first = run_now(runner, {"manifest": sample_manifest})
    ids, changes = annotation_ids(runner.store), runner.store.changes(0, 10_000)
    second = run_now(runner, {"manifest": sample_manifest})
    assert first.state == second.state == "done"
    assert annotation_ids(runner.store) == ids and runner.store.changes(0, 10_000) == changes
    assert len(runner_for.loads) == 1


def test_a_rerun_with_a_higher_threshold_retires_what_falls_below(runner_for, sample_manifest):
    runner = runner_for()
    first = run_now(runner, {"manifest": sample_manifest, "canvases": [1]})
    assert (first.state, first.total, first.done) == ("done", 1, 1)
    found = {a.id: a.document["confidence"] for a in runner.store.page(None, 0, 1000)}
    assert {a.canvas_id for a in runner.store.page(None, 0, 1000)} == {"https://example.org/scenes/manifest/canvas/1"}
    scores = sorted(set(found.values()))
    assert len(scores) >= 2, found
    conf = (scores[0] + scores[-1]) / 2
    second = run_now(runner, {"manifest": sample_manifest, "canvases": ["https://example.org/scenes/manifest/canvas/1"], "conf": conf})
    assert second.state == "done"
    kept = {a.id for a in runner.store.page(None, 0, 1000)}
    assert kept == {anno_id for anno_id, score in found.items() if score >= conf}
    retired = [c.anno_id for c in runner.store.changes(0, 1000) if c.kind == "Delete"]
    assert sorted(retired) == sorted(anno_id for anno_id, score in found.items() if score < conf)


def test_a_region_job_keeps_to_the_region(runner_for, sample_manifest):
    bird = next(o["box"] for o in TRUTH[SCENES[1]] if o["label"] == "bird")
    x, y = bird[0] - 110, bird[1] - 90
    w, h = bird[2] + 220, bird[3] + 180
    runner = runner_for()
    job = run_now(runner, {"manifest": sample_manifest, "canvases": [1], "region": f"xywh={x},{y},{w},{h}"})
    assert (job.state, job.errors) == ("done", [])
    stored = runner.store.page(None, 0, 1000)
    assert stored
    for annotation in stored:
        bx, by, bw, bh = map(int, annotation.document["target"]["selector"]["value"][5:].split(","))
        assert x - 1 <= bx and bx + bw <= x + w + 1 and y - 1 <= by and by + bh <= y + h + 1


def test_an_unknown_canvas_or_manifest_fails_the_job_with_a_reason(runner_for, sample_manifest, tmp_path):
    runner = runner_for()
    job = run_now(runner, {"manifest": sample_manifest, "canvases": ["https://example.org/nothing"]})
    assert job.state == "failed" and "https://example.org/nothing" in job.error and sample_manifest in job.error
    missing = str(tmp_path / "missing.json")
    job = run_now(runner, {"manifest": missing})
    assert job.state == "failed" and missing in job.error


def test_a_failing_canvas_is_reported_and_the_rest_stored(runner_for, sample_server, tmp_path):
    document = make_manifest(3, [*specs(SCENES[:1]), ("no-such-image", 800, 600)], f"{sample_server}/iiif/3")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    runner = runner_for()
    job = run_now(runner, {"manifest": str(path)})
    assert (job.state, job.done, job.total) == ("done", 2, 2)
    assert [e["canvas"] for e in job.errors] == [document["items"][1]["id"]]
    assert "no-such-image" in job.errors[0]["error"]
    assert {a.canvas_id for a in runner.store.page(None, 0, 1000)} == {document["items"][0]["id"]}


def test_a_resumed_job_skips_the_canvases_it_finished(runner_for, gate):
    runner = runner_for()
    url = f"{gate.url}/manifest.json"
    job = runner.store.create_job({"manifest": url})
    runner.store.claim_job()  # a runner took it, finished the first canvas, then died
    runner.store.mark_canvas_done(job.id, manifest_key(url), f"{gate.url}/manifest/canvas/0", None)
    gate.requested.clear()
    assert runner.acquire()  # the next runner requeues it
    assert runner.store.job(job.id).state == "queued"
    runner.run_pending()
    finished = runner.store.job(job.id)
    assert (finished.state, finished.done, finished.total) == ("done", 4, 4)
    assert gate.images_requested("first") == [] and gate.images_requested("second")


def test_cancelling_a_running_job_stops_it_before_the_next_canvas(runner_for, gate):
    runner = runner_for()
    job = runner.store.create_job({"manifest": f"{gate.url}/manifest.json"})
    gate.close(allowed="first")
    try:
        runner.start()
        wait_for(lambda: runner.store.job(job.id).done == 1, "the first canvas")
        assert runner.store.cancel_job(job.id).state == "cancelled"
    finally:
        gate.open()
    runner.stop(timeout=WAIT_SECONDS)
    with open_store(runner.store.url) as store:
        cancelled = store.job(job.id)
        assert (cancelled.state, cancelled.done) == ("cancelled", 1)
        assert {a.canvas_id for a in store.page(None, 0, 1000)} == {f"{gate.url}/manifest/canvas/0"}


def test_a_cancelled_queued_job_never_runs(runner_for, sample_manifest):
    runner = runner_for()
    job = runner.store.create_job({"manifest": sample_manifest})
    runner.store.cancel_job(job.id)
    assert runner.acquire() and runner.run_pending() == 0
    assert runner.store.job(job.id).state == "cancelled" and runner.store.count(None) == 0
    assert runner_for.loads == []  # nothing to run, nothing loaded


def test_only_one_runner_per_database(runner_for, tmp_path):
    first, second = runner_for(), runner_for()
    assert first.acquire() and not second.acquire()
    other = runner_for(tmp_path / "other" / "enricher.sqlite3")
    assert other.acquire()  # another database, another lock
    # another process is refused while this one holds the lock
    worker = subprocess.run(
        [sys.executable, "-m", "enricher.jobs", "--once"], env=worker_env(first.store.url), capture_output=True,
        text=True, timeout=WAIT_SECONDS, cwd=PROJECT_ROOT,
    )
    assert worker.returncode == 1 and first.store.url in worker.stderr
    first.release()
    assert second.acquire()


def worker_env(database: str | Path, **settings) -> dict[str, str]:
    """The environment of a `python -m enricher.jobs` process with the settings of the runners here."""
    env = process_environment()
    path = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(path)
    settings = {"database": database, "weights": DEMO_WEIGHTS, "base_url": BASE_URL, "allow_private": "true",
                "batch": 1, "backoff": 0.01, **settings}
    env.update({f"ENRICHER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def test_a_killed_worker_resumes_with_nothing_lost_or_duplicated(runner_for, demo_detector, gate, tmp_path):
    url = f"{gate.url}/manifest.json"
    gate.open()
    reference = runner_for(tmp_path / "reference.sqlite3")
    assert run_now(reference, {"manifest": url}).state == "done"
    expected = annotation_ids(reference.store)
    assert expected

    database = tmp_path / "killed.sqlite3"
    with open_store(database) as store:
        job = store.create_job({"manifest": url})
        gate.close(allowed="first")
        worker = subprocess.Popen(
            [sys.executable, "-m", "enricher.jobs", "--once"], env=worker_env(database, device=demo_detector.device),
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_for(lambda: store.job(job.id).done or worker.poll() is not None, "the first canvas")
            assert worker.poll() is None, worker.communicate()[0]
            worker.kill()  # SIGKILL: no cleanup, no chance to requeue
            worker.wait(WAIT_SECONDS)
        finally:
            gate.open()
        interrupted = store.job(job.id)
        assert (interrupted.state, interrupted.done, interrupted.total) == ("running", 1, 4)
        first_canvas = {a.id for a in store.page(None, 0, 1000)}
        assert first_canvas and first_canvas <= set(expected)

        again = subprocess.run(
            [sys.executable, "-m", "enricher.jobs", "--once"], env=worker_env(database, device=demo_detector.device),
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS,
        )
        assert again.returncode == 0, again.stderr
        resumed = store.job(job.id)
        assert (resumed.state, resumed.done, resumed.total, resumed.errors) == ("done", 4, 4, [])
        assert annotation_ids(store) == expected
        created = [c.anno_id for c in store.changes(0, 100_000) if c.kind == "Create"]
        assert sorted(created) == expected  # each annotation created exactly once
        assert all(store.get(a).version == 1 for a in first_canvas)  # the resumed run left them alone
