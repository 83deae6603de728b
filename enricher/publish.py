"""Write a manifest's results as static files laid out like their URLs, so the folder can be served as is."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .annotate import annotation_list, annotation_page, enriched_manifest, manifest_key
from .config import Config
from .manifest import Manifest
from .pipeline import CanvasResult, ManifestResult
from .urls import list_url, manifest_url, page_url, path_under, public_base

# a name private to one thread of one process: one left by a crash is overwritten, a link not followed
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)


def write_json(path: Path, document: dict) -> None:
    """Write JSON atomically: a reader never sees half a file, a crash never truncates an old one.

    The file is written under a name of this process and thread beside PATH, then renamed over it; the
    folder is made only when the first try finds it missing (a canvas writes 5 to 10 files, each one
    costing system calls of the thread that writes beside inference)."""
    data = json.dumps(document, ensure_ascii=False).encode("utf-8")  # unindented: C-encoded, 5x json.dump's speed
    tmp = path.parent / f".{path.name}.{os.getpid()}-{threading.get_native_id()}.tmp"
    try:
        fd = os.open(tmp, TEMP_FLAGS, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, TEMP_FLAGS, 0o600)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def publish_canvas(item: CanvasResult, manifest: Manifest, out_dir: Path, config: Config) -> None:
    """Write a canvas's v3 page, v2 list and annotations; for a failed canvas nothing, so whatever an
    earlier run wrote for it stays."""
    if item.error is not None:
        return
    base = public_base(config.base_url)
    key = manifest_key(manifest.id)
    canvas, n = item.canvas, item.canvas.index
    page, listed = page_url(base, key, n), list_url(base, key, n)
    write_json(out_dir / path_under(base, page), annotation_page(canvas, item.annotations, page))
    write_json(out_dir / path_under(base, listed), annotation_list(canvas, item.annotations, listed))
    for annotation in item.annotations:
        write_json(out_dir / path_under(base, annotation["id"]), annotation)


def publish_manifest(result: ManifestResult, out_dir: Path, config: Config) -> Path:
    """Write the enriched manifest linking the page and list of every canvas of RESULT; return its path."""
    base = public_base(config.base_url)
    key = manifest_key(result.manifest.id)
    links = {
        item.canvas.id: (page_url(base, key, item.canvas.index), list_url(base, key, item.canvas.index))
        for item in result.canvases
    }
    url = manifest_url(base, key)
    manifest_path = out_dir / path_under(base, url)
    write_json(manifest_path, enriched_manifest(result.manifest, links, url))
    return manifest_path
