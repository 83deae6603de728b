"""Ultralytics with nothing leaving the machine: every YOLO model enricher loads goes through here.

Left alone, ultralytics resolves one.one.one.one and dns.google on import to decide whether it is
online, and when it is it checks PyPI for updates, sends usage analytics, syncs settings, reports
crashes, may pip-install missing packages (its exporter too) and downloads weights it is given by name.
Here the ``YOLO_OFFLINE`` and ``YOLO_AUTOINSTALL`` switches are set before the first import (ultralytics
reads them once, then), its online and auto-install flags are forced off should something have imported it
earlier, sync and every logging integration are turned off for this process, and weights must be a local
file: nothing is downloaded. OpenVINO, which ultralytics imports to export and run OpenVINO models, sends
usage telemetry on import and on every conversion through ``openvino_telemetry`` (installed beside it)
unless a consent file says no: that module is hidden, so OpenVINO falls back to its own no-op stub.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ModelError

# Ultralytics settings that would reach a network service, off for this process only.
OFFLINE_SETTINGS = {"sync": False, "api_key": "", "clearml": False, "comet": False, "dvc": False,
                    "mlflow": False, "raytune": False, "tensorboard": False, "wandb": False}
# Modules that copied ultralytics' ONLINE and AUTOINSTALL flags when they were imported.
ONLINE_FLAGS = ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.events")
INSTALL_FLAGS = ("ultralytics.utils", "ultralytics.utils.checks")
TELEMETRY = "openvino_telemetry"


def offline_ultralytics() -> ModuleType:
    """Import ultralytics with its online check, update check, analytics, settings sync and
    integrations off; return the package."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    if TELEMETRY not in sys.modules:  # None there makes `import openvino_telemetry` raise ImportError
        sys.modules[TELEMETRY] = None
    os.environ.pop("ULTRALYTICS_API_KEY", None)  # would start Ultralytics Platform logging when training
    import ultralytics
    from ultralytics.utils import SETTINGS

    # dict.update, not SETTINGS.update: that one would also rewrite the user's settings file
    dict.update(SETTINGS, OFFLINE_SETTINGS)
    for name in ONLINE_FLAGS:
        if name in sys.modules:
            sys.modules[name].ONLINE = False
    for name in INSTALL_FLAGS:
        if name in sys.modules:
            sys.modules[name].AUTOINSTALL = False
    events = sys.modules.get("ultralytics.utils.events")
    if events is not None:
        events.events.enabled = False  # built before our settings took effect: it would still send
    return ultralytics


def local_weights(weights: str | Path) -> Path:
    """Return the local file (or exported model folder) WEIGHTS names: a path, or a name in
    ultralytics' weights folder. Raise ModelError for anything else: enricher never downloads."""
    path = Path(weights).expanduser()
    if path.exists():
        return path
    SETTINGS = offline_ultralytics().utils.SETTINGS

    cached = Path(SETTINGS["weights_dir"]) / path
    if not path.is_absolute() and cached.exists():
        return cached
    raise ModelError(
        "weights not found: enricher runs offline and downloads nothing. Give a local file "
        "(.pt, .onnx or an OpenVINO folder) with --weights or ENRICHER_WEIGHTS",
        where=str(weights),
    )


def load_yolo(weights: str | Path, task: str = "detect") -> Any:
    """Load local WEIGHTS as an ultralytics YOLO model for TASK, offline."""
    offline_ultralytics()
    from ultralytics import YOLO

    return YOLO(str(local_weights(weights)), task=task)


def weights_sha256(path: str | Path) -> str:
    """Hash a weights file, or every file of an exported model directory (OpenVINO)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
