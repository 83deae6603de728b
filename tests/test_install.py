"""A real install runs anywhere: the wheel built from the repository, installed into a fresh virtual
environment, runs ``enricher demo``, ``enricher enrich`` and ``enricher serve`` from an unrelated folder,
with every data file found inside the installed package (nothing read from the checkout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from factories import make_manifest
from sampledata import SCENES, specs
from served import serving

from enricher.annotate import manifest_key
from enricher.datafiles import PROJECT_ROOT, SHIPPED

pytestmark = pytest.mark.install
BUILD_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "enricher", *SHIPPED)
RUN_SECONDS = 300  # a ceiling, not a measure


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv (reusing the installed dependencies) with the wheel of this checkout; return its bin folder."""
    if not (PROJECT_ROOT / "pyproject.toml").is_file():
        pytest.skip(f"not a checkout of the repository: {PROJECT_ROOT}")
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    for name in BUILD_FILES:
        if not (PROJECT_ROOT / name).exists():
            continue  # what the build then lacks, the commands below show
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    check([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(root / "wheels"), str(source)])
    (wheel,) = (root / "wheels").glob("enricher-*.whl")
    check([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")])
    check([*pip, "--python", str(root / "venv" / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel)])
    return root / "venv" / "bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def environment() -> dict[str, str]:
    """This environment without the checkout on the path and without enricher settings but the session's
    cache of exported models (the default runtime exports the demo weights there once)."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONPATH" and (not k.startswith("ENRICHER_") or k == "ENRICHER_MODEL_CACHE")}


def check(command: list[str], cwd: Path | None = None) -> str:
    """Run COMMAND; fail the test with its output unless it exits 0; return its stdout."""
    run = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=RUN_SECONDS)
    assert run.returncode == 0, f"{' '.join(command)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


def test_the_installed_package_and_its_data_come_from_the_venv(installed, elsewhere):
    code = "import enricher, enricher.datafiles as d; print(enricher.__file__); print(d.DATA_ROOT)"
    package, data = map(Path, check([str(installed / "python"), "-c", code], elsewhere).split())
    venv = installed.parent
    assert package.is_relative_to(venv) and data.is_relative_to(package.parent)
    assert not any(Path(line).is_relative_to(PROJECT_ROOT) for line in (package, data))


def test_the_installed_demo_runs(installed, elsewhere, closed_port):
    output = check([str(installed / "enricher"), "demo", "--out", "out", "--port", str(closed_port), "--device", "cpu"], elsewhere)
    assert "2 manifests, 5 canvases (0 failed)" in output
    assert len(list((elsewhere / "out").glob("*/pages/*.json"))) == 5


def test_the_installed_enrich_runs_on_a_manifest_file(installed, elsewhere, sample_server):
    document = make_manifest(3, specs(SCENES[:1]), f"{sample_server}/iiif/3")
    (elsewhere / "manifest.json").write_text(json.dumps(document))
    weights = check([str(installed / "python"), "-c", "from enricher.datafiles import DEMO_WEIGHTS; print(DEMO_WEIGHTS)"])
    command = [str(installed / "enricher"), "enrich", "manifest.json", "--out", "out", "--allow-private",
               "--weights", weights.strip(), "--device", "cpu"]
    assert "1 canvases (0 failed)" in check(command, elsewhere)
    page = json.loads((elsewhere / "out" / manifest_key(document["id"]) / "pages" / "0.json").read_text())
    assert page["items"]


def test_the_installed_service_serves_the_shipped_files(installed, elsewhere):
    with serving([str(installed / "enricher")], elsewhere, environment(), "--workers", "1", "--database", "db.sqlite3") as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            for route, expected in [("vocab", "skos:Concept"), ("ns", "owl:"), ("metrics", "dqv:Metric"),
                                    ("verdicts", "skos:ConceptScheme"), ("openapi.json", '"openapi"'),
                                    ("context.jsonld", '"@context"')]:
                response = client.get(route, headers={"Accept": "text/turtle, application/json;q=0.5"})
                assert response.status_code == 200 and expected in response.text, (route, response.text[:300])
