"""Nothing leaves the machine: a demo run and a service job look up no host name and connect to nothing but
the IIIF image server they name (ultralytics' online check, update check, analytics, settings sync and
auto-install are off wherever enricher loads or exports a model, and so is OpenVINO's telemetry; weights
named but not present are refused, not downloaded). The runs are subprocesses with default settings
watched by an audit hook; the demo run exports its weights into an empty cache first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from netguard import network_use, watched
from served import serving
from webclient import SECRET, WRITER, Client, run_job

from enricher.datafiles import DEMO_COLLECTION, DEMO_WEIGHTS
from enricher.demo import serve_demo
from enricher.detect import Detector
from enricher.errors import ModelError
from enricher.exports import RECORD

ENRICHER = "from enricher.cli import main; main()"
LOOPBACK = "127.0.0.1"


def environment(**settings) -> dict[str, str]:
    """This environment without enricher settings or ultralytics switches, plus SETTINGS as ENRICHER_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENRICHER_", "YOLO_", "ULTRALYTICS_"))}
    env.update({f"ENRICHER_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def assert_only_loopback(log: Path, port: int) -> None:
    lookups, connections = network_use(log)
    assert lookups <= {LOOPBACK}, f"host names looked up: {sorted(map(str, lookups - {LOOPBACK}))}"
    assert connections == {(LOOPBACK, port)}, f"connections: {sorted(connections)}"


def test_a_demo_run_that_exports_connects_only_to_its_image_server(tmp_path, closed_port):
    log, cache = tmp_path / "network.log", tmp_path / "models"
    command = [*watched(ENRICHER, log), "demo", "--out", str(tmp_path / "out"), "--port", str(closed_port), "--device", "cpu"]
    run = subprocess.run(command, cwd=tmp_path, env=environment(model_cache=cache), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "5 canvases (0 failed)" in run.stdout
    (record,) = cache.glob(f"*/{RECORD}")
    assert json.loads(record.read_text())["weights"] == DEMO_WEIGHTS.name, "the demo did not export its weights"
    assert_only_loopback(log, closed_port)


def test_a_service_job_connects_only_to_the_image_server_it_names(tmp_path, model_cache):
    log = tmp_path / "network.log"
    env = environment(weights=DEMO_WEIGHTS, allow_private="true", tokens=f"{WRITER}:{SECRET}", device="cpu",
                      workers=1, database=tmp_path / "enricher.sqlite3", model_cache=model_cache)
    with serve_demo(0) as collection, serving(watched(ENRICHER, log), tmp_path, env) as url:
        manifest = collection.replace(DEMO_COLLECTION.name, "demo-v3.json")
        with Client(SimpleNamespace(url=url)) as client:
            job = run_job(client, {"manifest": manifest})
        assert job["state"] == "done" and job["errors"] == [], job
        assert job["progress"] == {"done": 3, "total": 3}
    assert_only_loopback(log, urlsplit(manifest).port)


def test_weights_given_by_a_name_that_is_not_a_local_file_are_refused_not_downloaded(config, tmp_path):
    with pytest.raises(ModelError) as raised:
        Detector(config(weights="yolo-nowhere-11n.pt"))
    assert "downloads nothing" in str(raised.value) and "yolo-nowhere-11n.pt" in str(raised.value)
