"""The console script: a run over real servers writes the published files; bad input ends in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from factories import load_fixture, make_manifest
from sampledata import SCENES, specs

from enricher.annotate import manifest_key
from enricher.cli import main
from enricher.datafiles import DEMO_WEIGHTS

LOOPBACK = ["--allow-private", "--weights", str(DEMO_WEIGHTS)]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_enrich_writes_manifest_pages_lists_and_annotations(tmp_path, sample_server):
    document = make_manifest(3, specs(SCENES[:2]), f"{sample_server}/iiif/3")
    source = tmp_path / "manifest.json"
    source.write_text(json.dumps(document))
    out = tmp_path / "out"
    result = run("enrich", str(source), "--out", str(out), "--base-url", "http://annotations.test/", *LOOPBACK)
    assert result.exit_code == 0, result.output
    assert "2 canvases (0 failed)" in result.output
    assert "http://www.wikidata.org/entity/Q" in result.output  # counts per concept
    key = manifest_key(document["id"])
    enriched = json.loads((out / key / "manifest.json").read_text())
    assert enriched["id"] == f"http://annotations.test/{key}/manifest.json"
    for n, canvas in enumerate(enriched["items"]):
        page_url = canvas["annotations"][-1]["id"]
        assert page_url == f"http://annotations.test/{key}/pages/{n}.json"
        page = json.loads((out / key / "pages" / f"{n}.json").read_text())
        assert page["id"] == page_url and page["items"]
        for annotation in page["items"]:
            stored = json.loads((out / annotation["id"].removeprefix("http://annotations.test/")).read_text())
            assert stored["id"] == annotation["id"]
        listed = json.loads((out / key / "lists" / f"{n}.json").read_text())
        assert len(listed["resources"]) == len(page["items"])


@pytest.mark.parametrize(
    "content, expected",
    [
        ("this is not json", "not JSON"),
        ('{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Annotation"}', "manifest"),
        ('{"@context": "http://iiif.io/api/presentation/9/context.json", "type": "Manifest"}', "version"),
        ('{"type": "Manifest", "items": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested too deeply"),
        ('{"type": "Collection", "items": ' + '[{"type": "Collection", "items": ' * 5_000 + "[]" + "}]" * 5_000 + "}",
         "nested too deeply"),
    ],
    ids=["not-json", "annotation", "version-9", "deep-manifest", "deep-collection"],
)
def test_bad_manifest_file_is_one_line_naming_the_file(tmp_path, content, expected):
    source = tmp_path / "bad.json"
    source.write_text(content)
    result = run("enrich", str(source), "--out", str(tmp_path / "out"), *LOOPBACK)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("enricher: error:")
    assert expected.lower() in line.lower() and str(source) in line


def test_unreachable_server_names_the_url(tmp_path, closed_port):
    url = f"http://127.0.0.1:{closed_port}/manifest.json"
    result = run("enrich", url, "--out", str(tmp_path / "out"), *LOOPBACK)
    assert result.exit_code == 1
    assert url in result.stderr and result.stderr.count("\n") == 1


def test_private_address_is_refused_unless_allowed(tmp_path, sample_server):
    url = f"{sample_server}/iiif/3/{SCENES[0].split('.')[0]}/info.json"
    result = run("enrich", url, "--out", str(tmp_path / "out"), "--weights", str(DEMO_WEIGHTS))
    assert result.exit_code == 1
    assert "127.0.0.1" in result.stderr and "loopback" in result.stderr and "allow_private" in result.stderr


def test_failed_canvas_is_named_and_the_rest_published(tmp_path, sample_server):
    specs_ = specs(SCENES[:1]) + [("no-such-image", 800, 600)]
    document = make_manifest(3, specs_, f"{sample_server}/iiif/3")
    source = tmp_path / "manifest.json"
    source.write_text(json.dumps(document))
    result = run("enrich", str(source), "--out", str(tmp_path / "out"), *LOOPBACK)
    assert result.exit_code == 3
    assert "canvas 1 failed" in result.stderr and "no-such-image" in result.stderr
    key = manifest_key(document["id"])
    assert (tmp_path / "out" / key / "pages" / "0.json").exists()
    assert not (tmp_path / "out" / key / "pages" / "1.json").exists()


def test_canvases_without_an_image_are_named_failed_or_skipped_and_the_rest_published(tmp_path, sample_server):
    """A canvas without an image ended the run in a TypeError traceback; sound, video, text and empty
    canvases were errors too, or refused the whole manifest for want of a size."""
    document = load_fixture("mixed-canvases.json", sample_server)
    source = tmp_path / "manifest.json"
    source.write_text(json.dumps(document))
    result = run("enrich", str(source), "--out", str(tmp_path / "out"), *LOOPBACK)
    assert result.exit_code == 3, result.output
    (failed,) = [line for line in result.stderr.splitlines() if " failed: " in line]
    assert failed.startswith("enricher: canvas 1 failed: canvas https://example.org/fixtures/mixed/canvas/no-body")
    assert "has no body" in failed and str(source) in failed
    skipped = [line for line in result.stderr.splitlines() if " skipped: " in line]
    assert [line.split(" ")[2] for line in skipped] == ["2", "3", "4", "5"]
    assert "Traceback" not in result.output and "7 canvases (1 failed, 4 skipped)" in result.output
    pages = tmp_path / "out" / manifest_key(document["id"]) / "pages"
    assert sorted(p.name for p in pages.iterdir()) == ["0.json", "2.json", "3.json", "4.json", "5.json", "6.json"]
    assert json.loads((pages / "6.json").read_text())["items"]  # the canvas that took its size from info.json
    assert not json.loads((pages / "2.json").read_text())["items"]


def test_unknown_weights_is_one_line(tmp_path):
    source = tmp_path / "m.json"
    source.write_text(json.dumps(make_manifest(3, [("x", 10, 10)], "http://127.0.0.1:9")))
    result = run("enrich", str(source), "--out", str(tmp_path / "out"), "--weights", str(tmp_path / "missing.pt"))
    assert result.exit_code == 1
    assert "missing.pt" in result.stderr and result.stderr.count("\n") == 1
