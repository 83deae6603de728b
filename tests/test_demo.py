"""``enricher demo``: the bundled samples are enriched whatever port the image server gets, and a demo that
enriches nothing says so and fails."""

from __future__ import annotations

import json

from click.testing import CliRunner

from enricher import demo
from enricher.cli import main


def run_demo(*args: str):
    return CliRunner().invoke(main, ["demo", "--device", "cpu", *args], catch_exceptions=False)


def test_the_demo_enriches_every_sample_canvas_on_any_free_port(tmp_path, closed_port):
    assert closed_port != demo.DEMO_PORT
    result = run_demo("--out", str(tmp_path), "--port", str(closed_port))
    assert result.exit_code == 0, result.output
    assert "2 manifests, 5 canvases (0 failed)" in result.output
    published = [json.loads(path.read_text()) for path in tmp_path.glob("*/manifest.json")]
    assert len(published) == 2
    text = json.dumps(published)
    assert f"http://127.0.0.1:{closed_port}/iiif/" in text and demo.DEMO_ORIGIN not in text


def test_a_demo_that_enriches_no_canvas_fails_saying_so(tmp_path, monkeypatch):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    collection = json.loads((demo.DEMO_MANIFESTS / "collection.json").read_text())
    for item in collection["items"]:
        item["id"] = item["id"].replace(".json", "-gone.json")  # the server answers 404
    (manifests / "collection.json").write_text(json.dumps(collection))
    monkeypatch.setattr(demo, "DEMO_MANIFESTS", manifests)
    result = run_demo("--out", str(tmp_path / "out"), "--port", "0")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("enricher: error: the demo enriched no canvas")
