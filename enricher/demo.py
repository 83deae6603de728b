"""The offline demo's samples on loopback: the sample images over IIIF and the bundled manifests, on any port.

The bundled manifests are plain IIIF documents that name their image server at ``DEMO_ORIGIN``; when
the server runs elsewhere they are served with that origin replaced by the server's own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .datafiles import DEMO_COLLECTION, DEMO_IMAGES, DEMO_MANIFESTS

DEMO_PORT = 8182
DEMO_ORIGIN = f"http://127.0.0.1:{DEMO_PORT}"  # what the bundled manifests name


def write_demo_manifests(base: str, folder: Path) -> None:
    """Write the bundled manifests into FOLDER, naming BASE (``http://host:port``) as their server."""
    for source in DEMO_MANIFESTS.glob("*.json"):
        text = source.read_text(encoding="utf-8")
        (folder / source.name).write_text(text.replace(DEMO_ORIGIN, base.rstrip("/")), encoding="utf-8")


@contextmanager
def serve_demo(port: int = DEMO_PORT) -> Iterator[str]:
    """Serve the sample images and the bundled manifests on 127.0.0.1:PORT (0: any free port) in a
    background thread; yield the URL of the demo collection."""
    from .imageserver import serve_images

    with tempfile.TemporaryDirectory(prefix="enricher-demo-") as folder:
        with serve_images(DEMO_IMAGES, port=port, documents=folder) as base:
            write_demo_manifests(base, Path(folder))
            yield f"{base}/manifests/{DEMO_COLLECTION.name}"
