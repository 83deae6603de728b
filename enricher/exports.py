"""The cache of exported models: PyTorch weights exported once per weights, image size, batch and
runtime version, reused by every later run and process.

An entry is a folder named by its key holding the exported model and ``export.json`` (what it was made
from, and the SHA-256 of the export). It is made in a temporary folder beside it and renamed into place,
so a reader sees a whole entry or none, and two processes exporting at once keep one of theirs. An entry
whose export is missing or does not hash to what ``export.json`` says is made again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .yolo import load_yolo, weights_sha256

RECORD = "export.json"
CACHE_FOLDER = "enricher"


def cache_folder(setting: str) -> Path:
    """The folder of exported models: SETTING, else $XDG_CACHE_HOME/enricher, else ~/.cache/enricher."""
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / CACHE_FOLDER


def entry_key(sha256: str, imgsz: int, batch: int, runtime: str, version: str) -> str:
    """The folder name of one export: it changes with anything that changes the exported model."""
    return f"{sha256}-{imgsz}px-b{batch}-{runtime}-{version}"


def exported(weights: Path, sha256: str, fmt: str, options: dict[str, Any], key: str, folder: Path) -> Path:
    """The export of WEIGHTS (SHA256) in ultralytics format FMT under KEY in FOLDER: the cached one when it
    is whole, else made now (export OPTIONS) and cached. Raises whatever the export raises."""
    entry = folder / key
    found = whole(entry)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        made = scratch / key
        made.mkdir()
        source = scratch / weights.name  # ultralytics writes the export beside the weights it reads
        shutil.copyfile(weights, source)
        model = Path(load_yolo(source).export(format=fmt, device="cpu", **options))
        model = Path(shutil.move(model, made / model.name))
        record = {"model": model.name, "sha256": weights_sha256(model), "weights": weights.name, "weightsSha256": sha256}
        (made / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
        install(made, entry, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found = whole(entry)
    if found is None:
        raise OSError(f"the export cached at {entry} is not whole right after it was made")
    return found


def whole(entry: Path) -> Path | None:
    """The model of a whole cache ENTRY; None when it is missing, half-written or damaged."""
    try:
        record = json.loads((entry / RECORD).read_text(encoding="utf-8"))
        model = entry / record["model"]
        return model if model.exists() and weights_sha256(model) == record["sha256"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def install(made: Path, entry: Path, scratch: Path) -> None:
    """Rename MADE to ENTRY. A whole entry another process put there first stays; a damaged one is
    moved into SCRATCH (deleted with it) first."""
    if entry.exists() and whole(entry) is None:
        try:
            entry.rename(scratch / "damaged")
        except OSError:
            pass  # another process moved it away first
    try:
        made.rename(entry)
    except OSError:
        if whole(entry) is None:  # not a whole entry of another process's: a real failure
            raise
