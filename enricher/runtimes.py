"""Inference runtimes, keyed by setting ``runtime``: PyTorch runs the weights as they come; on the CPU,
PyTorch weights run about 2x faster exported to ONNX Runtime and 3.5x to OpenVINO. ``load_model`` is
the one way a model is loaded: it picks the runtime, exports the weights to it once (``exports``
caches the export) and falls back to PyTorch with one warning when that fails.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .exports import cache_folder, entry_key, exported
from .threads import limit_threads
from .yolo import load_yolo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """One inference runtime: the package that runs the model, and how ultralytics exports to it."""

    name: str
    package: str  # the distribution that runs the model: its version goes into provenance and cache keys
    module: str  # what to import: is the runtime installed?
    export: str | None = None  # ultralytics' export format; None: the weights run as they are
    suffix: str = ""  # how exported weights of this runtime are named
    options: dict[str, Any] = field(default_factory=dict)  # export options

    @property
    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    @property
    def version(self) -> str:
        return metadata.version(self.package)

    def describe(self) -> str:
        """The runtime and its version, as provenance records it: ``openvino 2025.1.0``."""
        return f"{self.name} {self.version}"


TORCH = Runtime("torch", "torch", "torch")
RUNTIMES: dict[str, Runtime] = {
    "torch": TORCH,
    "openvino": Runtime("openvino", "openvino", "openvino", "openvino", "_openvino_model"),
    # onnxslim, which simplify would need, is not installed: ultralytics would try to pip-install it
    "onnx": Runtime("onnx", "onnxruntime", "onnxruntime", "onnx", ".onnx", {"simplify": False}),
}
FASTEST_FIRST = ("openvino", "onnx")  # what ``auto`` tries on the CPU
CHOICES = ("auto", *RUNTIMES)


def given_runtime(weights: Path) -> Runtime:
    """The runtime WEIGHTS were exported for, by their name; PyTorch for anything else."""
    return next((r for r in RUNTIMES.values() if r.suffix and weights.name.endswith(r.suffix)), TORCH)


def choose_runtime(setting: str, device: str, weights: Path) -> Runtime:
    """The runtime WEIGHTS run on with runtime SETTING on DEVICE: exported weights on their own, PyTorch
    weights on the CPU on the one SETTING names (``auto``: the fastest installed), PyTorch on CUDA."""
    if setting not in CHOICES:
        raise ConfigError(f"setting runtime={setting!r}: must be {', '.join(CHOICES)}")
    given = given_runtime(weights)
    if given is not TORCH or device != "cpu" or setting == "torch":
        return given
    if setting != "auto":
        return RUNTIMES[setting]
    return next((RUNTIMES[name] for name in FASTEST_FIRST if RUNTIMES[name].available), TORCH)


def load_model(weights: Path, sha256: str, config: Any, device: str) -> tuple[Runtime, Any]:
    """Load WEIGHTS (SHA256) as a YOLO model on the runtime CONFIG and DEVICE choose, held to CONFIG's
    inference threads; return the runtime and the model. An export that fails falls back to PyTorch with
    a warning."""
    runtime, path, model = _load(weights, sha256, config, device)
    limit_threads(model, runtime.name, path, config.inference_threads, device)
    return runtime, model


def _load(weights: Path, sha256: str, config: Any, device: str) -> tuple[Runtime, Path, Any]:
    """The runtime, the weights or export it runs and the model loaded from them."""
    runtime = choose_runtime(config.runtime, device, weights)
    if runtime.export is None or given_runtime(weights) is runtime:
        return runtime, weights, load_yolo(weights)
    try:
        key = entry_key(sha256, config.imgsz, config.batch, runtime.name, runtime.version)
        options = {"imgsz": config.imgsz, "batch": config.batch, "dynamic": True, **runtime.options}
        model = exported(weights, sha256, runtime.export, options, key, cache_folder(config.model_cache))
        return runtime, model, load_yolo(model)
    except Exception as exc:  # any failure to export or load leaves PyTorch, which always runs the weights
        log.warning("cannot run %s on %s, running PyTorch instead: %s", weights.name, runtime.name, exc)
        return TORCH, weights, load_yolo(weights)
