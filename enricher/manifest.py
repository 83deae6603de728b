"""Read IIIF Presentation 2.1 and 3.0 manifests and collections into canvases with their image services."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator

from .config import Config
from .errors import EnricherError, ManifestError
from .fetch import Fetcher
from .jsonld import as_list

log = logging.getLogger(__name__)

CONTEXT = re.compile(r"iiif\.io/api/presentation/(\d+)/context\.json")
KINDS = {2: {"sc:Manifest": "Manifest", "sc:Collection": "Collection"}, 3: {"Manifest": "Manifest", "Collection": "Collection"}}
LABEL_LANGUAGES = ("en", "none")  # tried first in a language map, then the first language given


@dataclass(frozen=True)
class Canvas:
    id: str
    label: str
    width: int
    height: int
    index: int
    image_url: str | None
    service_id: str | None
    service_version: int | None
    image_width: int | None
    image_height: int | None


@dataclass(frozen=True)
class Manifest:
    id: str
    url: str
    version: int
    label: str
    canvases: tuple[Canvas, ...]
    document: dict


def _text(value: Any) -> str:
    """Flatten a v2 label (string, list, @value object) or a v3 language map to one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        tagged = {item.get("@language"): item for item in value if isinstance(item, dict)}
        preferred = next((tagged[language] for language in LABEL_LANGUAGES if language in tagged), None)
        return _text(preferred or (value[0] if value else ""))
    if isinstance(value, dict):
        if "@value" in value:
            return str(value["@value"])
        for language in (*LABEL_LANGUAGES, *value):
            if language in value:
                return _text(value[language])
    return "" if value is None else str(value)


def _version(document: dict, url: str, default: int | None = None) -> int:
    """Return the Presentation API version from @context, or DEFAULT for an embedded document without one."""
    contexts = [c for c in as_list(document.get("@context")) if isinstance(c, str)]
    versions = {int(m.group(1)) for m in map(CONTEXT.search, contexts) if m}
    if versions:
        version = max(versions)
        if version not in KINDS:
            raise ManifestError(f"unsupported IIIF Presentation version {version} (@context)", where=url, pointer="/@context")
        return version
    if "@context" in document:
        raise ManifestError(
            f"unknown IIIF version: @context {document['@context']!r} is not IIIF Presentation 2 or 3",
            where=url,
            pointer="/@context",
        )
    if default is not None:
        return default
    if str(document.get("@type", "")).startswith("sc:"):
        return 2
    if document.get("type") in KINDS[3]:
        return 3
    raise ManifestError("not a IIIF manifest or collection: no @context and no IIIF type", where=url)


def _kind(document: dict, version: int, url: str) -> str:
    key = "@type" if version == 2 else "type"
    kind = KINDS[version].get(document.get(key))
    if kind is None:
        raise ManifestError(
            f"not a IIIF manifest or collection: {key} is {document.get(key)!r}", where=url, pointer=f"/{key}"
        )
    return kind


def _service_version(service: dict) -> int | None:
    """Return the Image API major version of a service object, or None if it is not a v2/v3 image service."""
    kind = service.get("type") or service.get("@type")
    if kind in ("ImageService2", "ImageService3"):
        return int(kind[-1])
    for text in [*as_list(service.get("@context")), *as_list(service.get("profile"))]:
        if not isinstance(text, str):
            continue
        match = re.search(r"iiif\.io/api/image/([23])/", text)
        if match:
            return int(match.group(1))
        if text in ("level0", "level1", "level2"):
            return 3  # the short profile names are Image API 3.0 only
    return None


def _service(value: Any) -> tuple[str | None, int | None]:
    """Return (service id, version) of the first IIIF image service among VALUE (object or list)."""
    for service in as_list(value):
        if not isinstance(service, dict):
            continue
        service_id, version = service.get("id") or service.get("@id"), _service_version(service)
        if isinstance(service_id, str) and version:
            return service_id.removesuffix("/info.json").rstrip("/"), version
    return None, None


def _size(obj: dict, key: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, str) and value.isdigit():  # some 2.x manifests write "1200"
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _canvas(canvas: Any, index: int, version: int, url: str, pointer: str) -> Canvas:
    if not isinstance(canvas, dict):
        raise ManifestError(f"canvas at {pointer} is not an object", where=url, pointer=pointer)
    canvas_id = canvas.get("@id" if version == 2 else "id")
    width, height = _size(canvas, "width"), _size(canvas, "height")
    if not isinstance(canvas_id, str) or not canvas_id:
        raise ManifestError(f"canvas at {pointer} has no id", where=url, pointer=pointer)
    if width is None or height is None:
        raise ManifestError(f"canvas {canvas_id} at {pointer} has no positive width and height", where=url, pointer=pointer)
    image = _painted_image_v2(canvas) if version == 2 else _painted_image_v3(canvas)
    service_id, service_version = _service(image.get("service"))
    image_url = image.get("@id") or image.get("id")
    return Canvas(
        id=canvas_id,
        label=_text(canvas.get("label")),
        width=width,
        height=height,
        index=index,
        image_url=image_url if isinstance(image_url, str) else None,
        service_id=service_id,
        service_version=service_version,
        image_width=_size(image, "width"),
        image_height=_size(image, "height"),
    )


def _painted_image_v2(canvas: dict) -> dict:
    for annotation in as_list(canvas.get("images")):
        resource = annotation.get("resource") if isinstance(annotation, dict) else None
        if isinstance(resource, dict) and resource.get("@type") == "oa:Choice":
            resource = resource.get("default") or next(iter(as_list(resource.get("item"))), None)
        if isinstance(resource, dict):
            return resource
    return {}


def _painted_image_v3(canvas: dict) -> dict:
    for page in as_list(canvas.get("items")):
        for annotation in as_list(page.get("items") if isinstance(page, dict) else None):
            if not isinstance(annotation, dict) or "painting" not in as_list(annotation.get("motivation")):
                continue
            for body in as_list(annotation.get("body")):
                if isinstance(body, dict) and body.get("type") == "Choice":
                    body = next(iter(as_list(body.get("items"))), None)
                if isinstance(body, dict) and body.get("type", "Image") == "Image":
                    return body
    return {}


def parse_manifest(document: dict, url: str) -> Manifest:
    """Read a Presentation 2.1 or 3.0 manifest; ManifestError (naming URL and JSON path) if unusable."""
    return _parse(document, url, _version(document, url))


def _parse(document: dict, url: str, version: int) -> Manifest:
    if _kind(document, version, url) != "Manifest":
        raise ManifestError("this is a IIIF collection, not a manifest", where=url)
    if version == 2:
        sequences = as_list(document.get("sequences"))
        first = sequences[0] if sequences and isinstance(sequences[0], dict) else {}
        canvases, pointer = as_list(first.get("canvases")), "/sequences/0/canvases"
    else:
        canvases, pointer = as_list(document.get("items")), "/items"
    manifest_id = document.get("@id" if version == 2 else "id")
    return Manifest(
        id=manifest_id if isinstance(manifest_id, str) and manifest_id else url,
        url=url,
        version=version,
        label=_text(document.get("label")),
        canvases=tuple(_canvas(c, i, version, url, f"{pointer}/{i}") for i, c in enumerate(canvases)),
        document=document,
    )


@dataclass
class _Ref:
    """A manifest or collection still to read: its URL, its embedded document if complete, its depth."""

    url: str
    document: dict | None
    depth: int
    version: int | None = None  # of the collection that lists it, for embedded members without @context


def _members(document: dict, version: int, url: str, depth: int) -> list[_Ref]:
    if version == 2:
        listed = document.get("members") or [*as_list(document.get("manifests")), *as_list(document.get("collections"))]
    else:
        listed = document.get("items")
    refs = []
    for member in as_list(listed):
        member_id = member.get("@id" if version == 2 else "id") if isinstance(member, dict) else None
        if not isinstance(member_id, str):
            log.warning("skipping a collection member without an id in %s", url)
            continue
        complete = any(key in member for key in ("sequences", "manifests", "collections", "members")) or (
            version == 3 and "items" in member
        )
        refs.append(_Ref(member_id, member if complete else None, depth + 1, version))
    return refs


def read_manifests(source: str, fetcher: Fetcher, config: Config) -> Iterator[Manifest]:
    """Yield the manifest at SOURCE (URL or file), or every manifest reachable from a collection there.

    The source is at depth 0 and members of a collection at depth d are at d + 1; members deeper than
    ``config.max_depth`` and manifests beyond ``config.max_manifests`` are skipped with a warning, and
    so are members read before (cycles) and members that cannot be read. Errors in SOURCE itself raise.
    """
    stack, seen, count = [_Ref(source, None, 0)], set(), 0
    while stack:
        ref = stack.pop()
        if ref.url in seen:
            log.warning("skipping %s: already read (a cycle or a duplicate member)", ref.url)
            continue
        seen.add(ref.url)
        if ref.depth > config.max_depth:
            log.warning("skipping %s: deeper than max_depth=%d", ref.url, config.max_depth)
            continue
        try:
            document = ref.document or fetcher.get_json(ref.url)
            version = _version(document, ref.url, ref.version)
            if _kind(document, version, ref.url) == "Manifest":
                if count >= config.max_manifests:
                    log.warning("stopping at max_manifests=%d: %s and later members are skipped", config.max_manifests, ref.url)
                    return
                manifest = _parse(document, ref.url, version)
            else:
                manifest = None
                stack.extend(reversed(_members(document, version, ref.url, ref.depth)))
        except EnricherError as exc:
            if ref.depth == 0:
                raise
            log.warning("skipping %s: %s", ref.url, exc)
            continue
        if manifest is not None:
            count += 1
            yield manifest

