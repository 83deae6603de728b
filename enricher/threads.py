"""Inference threads: setting ``inference_threads`` holds a process's model to N threads on every runtime.

Ultralytics sets PyTorch's count (the process's, which also runs its pre- and post-processing whichever
runtime infers) to the cores less one, and compiles the OpenVINO model or makes the ONNX Runtime session
(which ignore ``OMP_NUM_THREADS``: OpenVINO's CPU plugin runs on TBB) on the model's first prediction.
So a callback at the start of every prediction sets PyTorch's count, and once compiles the model again,
or makes the session again, with the count. OpenVINO also stops pinning its threads: pinned, every
process's first N threads would share the same first N cores.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any


def limit_threads(model: Any, runtime: str, path: Path, threads: int, device: str) -> None:
    """Hold MODEL (an ultralytics YOLO on RUNTIME on DEVICE, loaded from PATH) and PyTorch to THREADS
    threads; 0 leaves every runtime its default."""
    if threads <= 0:
        return
    limit = LIMITS.get(runtime) if device == "cpu" else None  # on CUDA ONNX Runtime binds its session's outputs

    def hold(predictor: Any) -> None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if limit is not None:
            limit(predictor.model.backend, path, threads)

    model.add_callback("on_predict_start", hold)


def _openvino(backend: Any, path: Path, threads: int) -> None:
    """Compile the OpenVINO model again, and any later compile of it, with THREADS unpinned threads."""
    import openvino

    config = backend.compile_model.keywords["config"]  # ultralytics compiles through a partial: ours adds to it
    cpu = {"CPU": {"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False}}  # the CPU's, also under AUTO
    if config.get("DEVICE_PROPERTIES") == cpu:
        return
    backend.compile_model = partial(backend.compile_model, config={**config, "DEVICE_PROPERTIES": cpu})
    xml = path if path.is_file() else next(path.glob("*.xml"))
    backend.ov_compiled_model = backend.compile_model(openvino.Core().read_model(xml))


def _onnx(backend: Any, path: Path, threads: int) -> None:
    """Make the ONNX Runtime session again with THREADS threads within an operator."""
    import onnxruntime

    if backend.session.get_session_options().intra_op_num_threads == threads:
        return
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    backend.session = onnxruntime.InferenceSession(str(path), options, providers=backend.session.get_providers())


LIMITS: dict[str, Callable[[Any, Path, int], None]] = {"openvino": _openvino, "onnx": _onnx}
