"""Inference runtimes: with default settings on the CPU the demo's PyTorch weights are exported once (to
OpenVINO where it is installed), cached, reused, and find what PyTorch finds; every runtime in the
registry does; a damaged cache entry is made again and a failed export falls back to PyTorch. Real
exports through ultralytics, one per runtime for the session (tests/conftest.py's model_cache). Setting
inference_threads holds every runtime, and PyTorch beside it, to its count."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from factories import make_manifest
from PIL import Image
from rdflib import Graph, Literal, URIRef
from sampledata import SAMPLES, SCENES, matched

from enricher import provenance, rdf
from enricher.annotate import build_annotation
from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detector
from enricher.errors import ConfigError
from enricher.exports import RECORD, install, whole
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher
from enricher.runtimes import FASTEST_FIRST, RUNTIMES, TORCH, choose_runtime

EXPORTING = [name for name, runtime in RUNTIMES.items() if runtime.export]


@pytest.fixture(scope="session")
def scenes() -> list[Image.Image]:
    return [Image.open(SAMPLES / name).convert("RGB") for name in SCENES]


@pytest.fixture(scope="session")
def default_detector(model_cache) -> Detector:
    """The demo weights with default settings on the CPU (only the cache and the weights given)."""
    return Detector(load_config({"weights": str(DEMO_WEIGHTS), "device": "cpu", "model_cache": str(model_cache)}, env={}))


@pytest.fixture(scope="session")
def on_runtime(config, default_detector):
    """A function of a runtime's name giving the demo weights loaded on it (each exported once)."""
    loaded = {default_detector.runtime.name: default_detector}

    def detector(name: str) -> Detector:
        if name not in loaded:
            loaded[name] = Detector(config(weights=str(DEMO_WEIGHTS), device="cpu", runtime=name))
        return loaded[name]

    return detector


def entry_of(detector: Detector) -> Path:
    """The cache entry the detector's exported model was loaded from."""
    return Path(detector.model.model_name).parent


def test_default_settings_export_to_the_fastest_installed_runtime(default_detector, model_cache):
    fastest = next(name for name in FASTEST_FIRST if RUNTIMES[name].available)
    assert default_detector.runtime is RUNTIMES[fastest]
    assert entry_of(default_detector).parent == model_cache
    assert json.loads((entry_of(default_detector) / RECORD).read_text())["weightsSha256"] == default_detector.sha256


def test_provenance_names_the_weights_as_given_and_adds_the_runtime(default_detector, config, demo_detector):
    assert (default_detector.name, default_detector.sha256) == (demo_detector.name, demo_detector.sha256)
    used = provenance.describe(SimpleNamespace(detector=default_detector), config)
    runtime = default_detector.runtime
    assert used["model"] == DEMO_WEIGHTS.name and used["modelSha256"] == demo_detector.sha256
    assert used["runtime"].startswith(f"{runtime.name} {runtime.version}; ultralytics ") and "device cpu" in used["runtime"]


def test_annotations_name_the_weights_as_given_and_the_runtime(default_detector, demo_detector):
    enricher = Enricher(default_detector.config, detector=default_detector)
    document = make_manifest(3, [("scene-1", 1200, 900)], "https://images.example.org/iiif")
    manifest = parse_manifest(document, document["id"])
    found = default_detector.predict([Image.open(SAMPLES / SCENES[0]).convert("RGB")])[0][0]
    annotation = build_annotation(canvas=manifest.canvases[0], manifest=manifest, detection=found,
                                  mapping=enricher.vocabulary.lookup(found.label), generator=enricher.generator,
                                  created="2026-01-01T00:00:00Z", config=enricher.config)
    runtime = default_detector.runtime.describe()
    assert annotation["generator"]["model"] == DEMO_WEIGHTS.name
    assert annotation["generator"]["modelSha256"] == demo_detector.sha256
    assert annotation["generator"]["runtime"] == runtime
    graph = Graph().parse(data=rdf.annotation_nquads(annotation, None), format="nt")
    assert (None, URIRef(rdf.ENRICHER_NS + "runtime"), Literal(runtime)) in graph


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_finds_what_pytorch_finds_on_the_demo_scenes(name, on_runtime, demo_detector, scenes):
    detector = on_runtime(name)
    assert detector.runtime is RUNTIMES[name] and detector.classes == demo_detector.classes
    found, expected = detector.predict(scenes), demo_detector.predict(scenes)
    for scene, ours, theirs in zip(SCENES, found, expected):
        assert theirs and matched(ours, theirs), (scene, ours, theirs)


def test_a_second_load_reuses_the_cached_export(default_detector, model_cache):
    entry = entry_of(default_detector)
    before = (entry.stat().st_ino, (entry / RECORD).stat().st_mtime_ns)
    again = Detector(default_detector.config)
    assert entry_of(again) == entry
    assert (entry.stat().st_ino, (entry / RECORD).stat().st_mtime_ns) == before
    assert not list(model_cache.glob(".export-*")), "an export began"


@pytest.mark.parametrize("name", EXPORTING)
def test_exported_weights_given_as_weights_run_on_their_runtime(name, on_runtime, config):
    exported = Path(on_runtime(name).model.model_name)
    detector = Detector(config(weights=str(exported), device="cpu", runtime="torch"))
    assert detector.runtime is RUNTIMES[name] and detector.name == exported.name


def test_a_damaged_cache_entry_is_exported_again(default_detector, tmp_path, scenes):
    entry = tmp_path / entry_of(default_detector).name
    shutil.copytree(entry_of(default_detector), entry)
    model = entry / json.loads((entry / RECORD).read_text())["model"]
    damaged = next(p for p in sorted(model.rglob("*")) if p.is_file()) if model.is_dir() else model
    damaged.write_bytes(damaged.read_bytes()[:100])  # as a crash or a full disk leaves a file
    detector = Detector(default_detector.config.replace(model_cache=str(tmp_path)))
    assert detector.runtime is default_detector.runtime and entry_of(detector) == entry
    assert matched(detector.predict(scenes[:1])[0], default_detector.predict(scenes[:1])[0])


def test_of_two_processes_exporting_at_once_the_first_entry_stays_whole(default_detector, tmp_path):
    first = entry_of(default_detector)
    entry, scratch = tmp_path / "cache" / first.name, tmp_path / ".export-second"
    shutil.copytree(first, entry)
    shutil.copytree(first, scratch / first.name)  # the same export, made by a second process
    (scratch / first.name / "second").write_text("made second")
    install(scratch / first.name, entry, scratch)
    assert whole(entry) is not None and not (entry / "second").exists()


def test_a_failed_export_falls_back_to_pytorch_with_one_warning(tmp_path, caplog, demo_detector, scenes):
    (tmp_path / "file").write_text("not a folder")
    config = load_config({"weights": str(DEMO_WEIGHTS), "device": "cpu", "model_cache": str(tmp_path / "file" / "cache")}, env={})
    with caplog.at_level(logging.WARNING, logger="enricher.runtimes"):
        detector = Detector(config)
    assert detector.runtime is TORCH
    warnings = [r.getMessage() for r in caplog.records if r.name == "enricher.runtimes"]
    assert len(warnings) == 1 and DEMO_WEIGHTS.name in warnings[0] and "PyTorch" in warnings[0], warnings
    assert matched(detector.predict(scenes[:1])[0], demo_detector.predict(scenes[:1])[0])


@pytest.mark.parametrize("setting", sorted(RUNTIMES))
def test_the_setting_chooses_the_runtime_on_the_cpu_and_cuda_keeps_pytorch(setting):
    assert choose_runtime(setting, "cpu", Path("model.pt")) is RUNTIMES[setting]
    assert choose_runtime(setting, "cuda:0", Path("model.pt")) is TORCH
    assert choose_runtime("auto", "cuda:0", Path("model.pt")) is TORCH


def test_the_environment_overrides_the_runtime():
    env = {"ENRICHER_RUNTIME": "onnx", "ENRICHER_WEIGHTS": str(DEMO_WEIGHTS)}
    assert choose_runtime(load_config(env=env).runtime, "cpu", DEMO_WEIGHTS) is RUNTIMES["onnx"]


def test_an_unknown_runtime_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="runtime='tensorrt'.*auto, torch"):
        choose_runtime("tensorrt", "cpu", Path("model.pt"))


# What each runtime's model, once it has predicted, reads back as its threads (ultralytics' backend)
THREADS_OF = {
    "torch": lambda backend: torch.get_num_threads(),
    "openvino": lambda backend: backend.ov_compiled_model.get_property("INFERENCE_NUM_THREADS"),
    "onnx": lambda backend: backend.session.get_session_options().intra_op_num_threads,
}


def backend_of(detector: Detector):
    """The ultralytics backend that runs the detector's model (made on its first prediction)."""
    return detector.model.predictor.model.backend


@pytest.fixture
def torch_threads_kept() -> Iterator[None]:
    """PyTorch's thread count (the process's) as it was before the test, after it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_inference_threads_hold_every_runtime_and_pytorch_to_the_count(name, on_runtime, config, scenes,
                                                                        torch_threads_kept):
    on_runtime(name)  # exported once for the session
    detector = Detector(config(weights=str(DEMO_WEIGHTS), device="cpu", runtime=name, inference_threads=1))
    assert matched(detector.predict(scenes[:1])[0], on_runtime(name).predict(scenes[:1])[0])
    torch.set_num_threads(2)  # as anything else in the process may, between predictions
    detector.predict(scenes[:1])
    assert THREADS_OF[name](backend_of(detector)) == 1 and torch.get_num_threads() == 1
    if name == "openvino":  # pinned, each process's one thread would go to the same first core
        assert backend_of(detector).ov_compiled_model.get_property("ENABLE_CPU_PINNING") is False


@pytest.mark.parametrize("name", EXPORTING)
def test_no_inference_threads_leave_the_runtime_its_default(name, on_runtime, scenes):
    detector = on_runtime(name)
    detector.predict(scenes[:1])
    assert detector.config.inference_threads == 0
    if name == "openvino":
        assert backend_of(detector).ov_compiled_model.get_property("ENABLE_CPU_PINNING") is True
    else:
        assert THREADS_OF[name](backend_of(detector)) == 0


def test_a_negative_thread_count_is_a_config_error():
    with pytest.raises(ConfigError, match="inference_threads=.-1.: must be 0 or more"):
        load_config(env={"ENRICHER_INFERENCE_THREADS": "-1"})
