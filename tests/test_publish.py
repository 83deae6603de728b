"""Published JSON files are written whole or not at all."""

import json

import pytest

from enricher.publish import write_json


def test_write_json_makes_missing_folders_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "key" / "annotations" / "abc"
    write_json(target, {"id": "a", "label": "été"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"id": "a", "label": "été"}
    assert [p.name for p in target.parent.iterdir()] == ["abc"]


def test_write_json_replaces_a_file_and_keeps_it_when_the_document_cannot_be_written(tmp_path):
    target = tmp_path / "page.json"
    write_json(target, {"n": 1})
    write_json(target, {"n": 2})
    with pytest.raises(TypeError):
        write_json(target, {"n": object()})
    assert json.loads(target.read_text()) == {"n": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["page.json"]
