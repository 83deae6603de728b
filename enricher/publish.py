"""Write a manifest's results as static files laid out like their URLs, so the folder can be served as is."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .annotate import (
    annotation_list,
    annotation_page,
    enriched_manifest,
    manifest_key,
    public_base,
)
from .config import Config
from .pipeline import ManifestResult


def write_json(path: Path, document: dict) -> None:
    """Write JSON atomically: a reader never sees half a file, a crash never truncates an old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def publish(result: ManifestResult, out_dir: Path, config: Config) -> Path:
    """Write the enriched manifest, a v3 page and a v2 list per canvas, and each annotation; return the
    enriched manifest's path. Canvases that failed keep whatever an earlier run wrote for them."""
    base = public_base(config.base_url)
    key = manifest_key(result.manifest.id)
    links: dict[str, tuple[str, str]] = {}
    for item in result.canvases:
        n = item.canvas.index
        page_url, list_url = f"{base}{key}/pages/{n}.json", f"{base}{key}/lists/{n}.json"
        links[item.canvas.id] = (page_url, list_url)
        if item.error is not None:
            continue
        write_json(out_dir / key / "pages" / f"{n}.json", annotation_page(item.canvas, item.annotations, page_url))
        write_json(out_dir / key / "lists" / f"{n}.json", annotation_list(item.canvas, item.annotations, list_url))
        for annotation in item.annotations:
            write_json(out_dir / annotation["id"][len(base):], annotation)
    manifest_path = out_dir / key / "manifest.json"
    write_json(manifest_path, enriched_manifest(result.manifest, links, f"{base}{key}/manifest.json"))
    return manifest_path
