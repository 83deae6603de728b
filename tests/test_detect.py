"""The detector: real ultralytics inference with the demo weights (other runtimes: tests/test_runtime.py)."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image
from sampledata import SAMPLES, SCENES, TRUTH, recall

from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detector, choose_device, weights_sha256
from enricher.errors import ConfigError, ModelError


def test_predict_finds_the_generated_objects(demo_detector):
    images = [Image.open(SAMPLES / name).convert("RGB") for name in SCENES]
    found = demo_detector.predict(images)
    assert len(found) == len(images)
    for detections, name in zip(found, SCENES):
        assert recall(detections, TRUTH[name]) >= 0.8, name
        assert all(0.0 <= d.score <= 1.0 for d in detections)


def test_provenance_names_the_weights_and_their_hash(demo_detector):
    assert demo_detector.name == DEMO_WEIGHTS.name
    assert demo_detector.sha256 == hashlib.sha256(DEMO_WEIGHTS.read_bytes()).hexdigest()
    assert demo_detector.device == choose_device("auto")


def test_class_filter_and_limits(config):
    detector = Detector(config(weights=str(DEMO_WEIGHTS), classes=["dog"], max_det=2))
    image = Image.open(SAMPLES / SCENES[0]).convert("RGB")
    found = detector.predict([image])[0]
    assert len(found) <= 2 and {d.label for d in found} <= {"dog"}


def test_unknown_class_in_the_filter_is_named(config):
    with pytest.raises(ConfigError, match="unicorn"):
        Detector(config(weights=str(DEMO_WEIGHTS), classes=["unicorn"]))


def test_missing_weights_is_a_model_error(config, tmp_path):
    with pytest.raises(ModelError) as caught:
        Detector(config(weights=str(tmp_path / "nothing.pt")))
    assert "nothing.pt" in str(caught.value)


def test_weights_hash_covers_every_file_of_a_model_folder(tmp_path):
    (tmp_path / "model.xml").write_text("graph")
    (tmp_path / "model.bin").write_bytes(b"\0" * 10)
    before = weights_sha256(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"\1" * 10)
    assert weights_sha256(tmp_path) != before
