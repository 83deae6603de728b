"""The detector: real ultralytics inference with the demo weights, exported formats."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from PIL import Image
from sampledata import SAMPLES, SCENES, TRUTH, recall

from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detection, Detector, choose_device, weights_sha256
from enricher.errors import ConfigError, ModelError
from enricher.geometry import iou
from enricher.yolo import load_yolo


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


def matched(found: list[Detection], expected: list[Detection]) -> bool:
    """True when each expected detection has its own found one of the same label, box (IoU >= 0.9) and
    score (within 0.02): exported models compute the same network in another runtime, so only rounding
    may differ."""
    left = list(found)
    for want in expected:
        hit = next((d for d in left if d.label == want.label and iou(d.box, want.box) >= 0.9
                    and abs(d.score - want.score) <= 0.02), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


# ultralytics exports next to the weights and loads the result by suffix: ONNX Runtime for a .onnx
# file, OpenVINO for a *_openvino_model folder; both run offline once their packages are installed.
@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("openvino", "_openvino_model")])
def test_exported_model_gives_the_same_objects(config, demo_detector, tmp_path, fmt, suffix):
    weights = tmp_path / DEMO_WEIGHTS.name
    shutil.copy(DEMO_WEIGHTS, weights)
    exported = load_yolo(weights).export(format=fmt, imgsz=config.imgsz, dynamic=True)
    detector = Detector(config(weights=exported))
    assert detector.name.endswith(suffix) and detector.sha256 == weights_sha256(exported)
    assert detector.classes == demo_detector.classes
    image = Image.open(SAMPLES / SCENES[0]).convert("RGB")
    found, expected = detector.predict([image])[0], demo_detector.predict([image])[0]
    assert expected and matched(found, expected), (found, expected)


def test_weights_hash_covers_every_file_of_a_model_folder(tmp_path):
    (tmp_path / "model.xml").write_text("graph")
    (tmp_path / "model.bin").write_bytes(b"\0" * 10)
    before = weights_sha256(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"\1" * 10)
    assert weights_sha256(tmp_path) != before
