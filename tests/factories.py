"""Builders for test inputs: IIIF manifests and collections pointing at a test image server, and images
whose pixels say where they are."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

PRESENTATION = {2: "http://iiif.io/api/presentation/2/context.json", 3: "http://iiif.io/api/presentation/3/context.json"}
IMAGE_CONTEXT = {2: "http://iiif.io/api/image/2/context.json", 3: "http://iiif.io/api/image/3/context.json"}
CanvasSpec = tuple  # (image identifier, image width, image height[, scale of this canvas])
FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str, images: str = "http://images.test") -> dict:
    """The manifest tests/fixtures/NAME with ``{images}`` replaced by IMAGES, the base URL of an image
    server started by enricher.imageserver.serve_images."""
    return json.loads((FIXTURES / name).read_text().replace("{images}", images))


def image_service(version: int, service_id: str, level: int = 2) -> dict:
    """An Image API service block as a manifest of Presentation VERSION embeds it (v2 image service in a
    v2 manifest, v3 image service in a v3 manifest)."""
    if version == 2:
        return {"@context": IMAGE_CONTEXT[2], "@id": service_id, "profile": f"http://iiif.io/api/image/2/level{level}.json"}
    return {"id": service_id, "type": "ImageService3", "profile": f"level{level}"}


def make_manifest(
    version: int,
    canvases: Sequence[CanvasSpec],
    image_base: str,
    scale: float = 1,
    *,
    manifest_id: str | None = None,
    label: str = "Test manifest",
    level: int = 2,
    service: bool = True,
) -> dict:
    """Build a Presentation 2.1 or 3.0 manifest with one canvas per (identifier, width, height) image.

    Images are ``{image_base}/{identifier}/full/max/0/default.jpg`` with the service ``{image_base}/{identifier}``
    (left out when SERVICE is false). Each canvas is SCALE times its image, or the scale its spec gives.
    """
    manifest_id = manifest_id or f"{image_base}/manifest-v{version}.json"
    base = manifest_id.removesuffix(".json")  # canvas ids unique per manifest
    built = []
    for index, (identifier, width, height, *own_scale) in enumerate(canvases):
        canvas_id = f"{base}/canvas/{index}"
        service_id = f"{image_base}/{identifier}"
        image = {
            "width": width,
            "height": height,
            "format": "image/jpeg",
            **({"service": [image_service(3, service_id, level)] if version == 3 else image_service(2, service_id, level)} if service else {}),
        }
        factor = own_scale[0] if own_scale else scale
        canvas_size = {"width": round(width * factor), "height": round(height * factor)}
        label_of = identifier
        if version == 3:
            body = {"id": f"{service_id}/full/max/0/default.jpg", "type": "Image", **image}
            painting = {"id": f"{canvas_id}/painting", "type": "Annotation", "motivation": "painting", "body": body, "target": canvas_id}
            page = {"id": f"{canvas_id}/page", "type": "AnnotationPage", "items": [painting]}
            built.append({"id": canvas_id, "type": "Canvas", "label": {"en": [label_of]}, **canvas_size, "items": [page]})
        else:
            resource = {"@id": f"{service_id}/full/full/0/default.jpg", "@type": "dctypes:Image", **image}
            painting = {"@type": "oa:Annotation", "motivation": "sc:painting", "resource": resource, "on": canvas_id}
            built.append({"@id": canvas_id, "@type": "sc:Canvas", "label": label_of, **canvas_size, "images": [painting]})
    if version == 3:
        return {"@context": PRESENTATION[3], "id": manifest_id, "type": "Manifest", "label": {"en": [label]}, "items": built}
    sequence = {"@type": "sc:Sequence", "canvases": built}
    return {"@context": PRESENTATION[2], "@id": manifest_id, "@type": "sc:Manifest", "label": label, "sequences": [sequence]}


def make_collection(
    version: int, members: Sequence[tuple[str, str] | dict], collection_id: str, label: str = "Test collection"
) -> dict:
    """Build a Presentation 2.1 or 3.0 collection of MEMBERS: (id, "Manifest" | "Collection") references,
    or complete documents to embed. Version 2 lists them under ``manifests`` and ``collections``."""
    items = []
    for member in members:
        if isinstance(member, dict):
            items.append({k: v for k, v in member.items() if k != "@context"})
            continue
        member_id, kind = member
        if version == 3:
            items.append({"id": member_id, "type": kind, "label": {"en": [member_id.rsplit("/", 1)[-1]]}})
        else:
            items.append({"@id": member_id, "@type": f"sc:{kind}", "label": member_id.rsplit("/", 1)[-1]})
    if version == 3:
        return {"@context": PRESENTATION[3], "id": collection_id, "type": "Collection", "label": {"en": [label]}, "items": items}
    manifests = [m for m in items if m.get("@type") == "sc:Manifest"]
    collections = [m for m in items if m.get("@type") == "sc:Collection"]
    return {
        "@context": PRESENTATION[2],
        "@id": collection_id,
        "@type": "sc:Collection",
        "label": label,
        "manifests": manifests,
        "collections": collections,
    }


def gradient_image(width: int, height: int, mark: tuple[int, int, int, int] | None = None) -> Image.Image:
    """An RGB image whose red grows with x and green with y (so a pixel tells its position), with an
    optional black rectangle MARK (x, y, w, h)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.float32).round().astype(np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.float32).round().astype(np.uint8)[:, None]
    pixels[..., 2] = 128
    image = Image.fromarray(pixels)
    if mark:
        x, y, w, h = mark
        ImageDraw.Draw(image).rectangle((x, y, x + w - 1, y + h - 1), fill=(0, 0, 0))
    return image


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring WIDTH x HEIGHT pixels with no pixel data: enough for Pillow to read the size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
