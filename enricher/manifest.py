"""Read IIIF Presentation 2.1 and 3.0 manifests and collections into canvases with their image services."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .errors import EnricherError, ManifestError, RegionError
from .fetch import Fetcher
from .jsonld import as_list
from .painting import PaintedImage, positive_size, read_painting

log = logging.getLogger(__name__)

CONTEXT = re.compile(r"iiif\.io/api/presentation/(\d+)/context\.json")
KINDS = {2: {"sc:Manifest": "Manifest", "sc:Collection": "Collection"}, 3: {"Manifest": "Manifest", "Collection": "Collection"}}
LABEL_LANGUAGES = ("en", "none")  # tried first in a language map, then the first language given
MAX_NESTING = 100  # levels of arrays and objects; real IIIF documents nest fewer than 20


def _of_first_image(name: str) -> property:
    """A read-only attribute: NAME of the canvas's first image, None when it paints none."""
    return property(lambda canvas: getattr(canvas.images[0], name) if canvas.images else None)


@dataclass(frozen=True)
class Canvas:
    id: str
    label: str
    width: int | None  # None: neither the canvas nor its first image declares a size
    height: int | None
    index: int
    images: tuple[PaintedImage, ...] = ()
    skip: str | None = None  # why nothing on it is looked at (sound, video, text, nothing painted)
    error: ManifestError | None = field(default=None, compare=False)  # why its image cannot be found

    # the first image stands for the canvas where one picture is shown (the review page, the export)
    image_url = _of_first_image("url")
    service_id = _of_first_image("service_id")
    service_version = _of_first_image("service_version")
    image_width = _of_first_image("width")
    image_height = _of_first_image("height")


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
    while isinstance(value, (list, dict)):  # a loop, not recursion: labels may nest deep
        if isinstance(value, list):
            tagged = {item["@language"]: item for item in value if isinstance(item, dict) and isinstance(item.get("@language"), str)}
            preferred = next((tagged[language] for language in LABEL_LANGUAGES if language in tagged), None)
            value = preferred or (value[0] if value else "")
        elif "@value" in value:
            value = str(value["@value"])
        else:
            value = next((value[language] for language in (*LABEL_LANGUAGES, *value) if language in value), "")
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
    if _name(document.get("type")) in KINDS[3]:
        return 3
    raise ManifestError("not a IIIF manifest or collection: no @context and no IIIF type", where=url)


def _name(value: Any) -> str | None:
    """VALUE when it is a string (a type name), else None: a list or object names no IIIF type."""
    return value if isinstance(value, str) else None


def _kind(document: dict, version: int, url: str) -> str:
    key = "@type" if version == 2 else "type"
    kind = KINDS[version].get(_name(document.get(key)))
    if kind is None:
        raise ManifestError(
            f"not a IIIF manifest or collection: {key} is {document.get(key)!r}", where=url, pointer=f"/{key}"
        )
    return kind


def _canvas(canvas: Any, index: int, version: int, url: str, pointer: str) -> Canvas:
    if not isinstance(canvas, dict):
        raise ManifestError(f"canvas at {pointer} is not an object", where=url, pointer=pointer)
    canvas_id = canvas.get("@id" if version == 2 else "id")
    if not isinstance(canvas_id, str) or not canvas_id:
        raise ManifestError(f"canvas at {pointer} has no id", where=url, pointer=pointer)
    images, skip, error = (), None, None
    try:
        images, skip = read_painting(canvas, version, pointer)
    except ManifestError as exc:
        error = ManifestError(f"canvas {canvas_id} at {pointer}: {exc.detail}", where=url, pointer=exc.pointer)
    width, height = positive_size(canvas, "width"), positive_size(canvas, "height")
    if (width is None or height is None) and images:  # a canvas without a size takes its first image's
        width, height = images[0].shown_size() or (None, None)
    return Canvas(
        id=canvas_id,
        label=_text(canvas.get("label")),
        width=width,
        height=height,
        index=index,
        images=images,
        skip=skip,
        error=error,
    )


def parse_manifest(document: dict, url: str) -> Manifest:
    """Read a Presentation 2.1 or 3.0 manifest; ManifestError (naming URL and JSON path) if unusable.

    A canvas whose image cannot be found does not make the manifest unusable: it carries the error.
    """
    _check_nesting(document, url)
    return _parse(document, url, _version(document, url))


def _check_nesting(document: Any, url: str) -> None:
    """Refuse a document nested deeper than MAX_NESTING, before anything recurses into it (copies, dumps)."""
    level, current = 0, [document]
    while current:
        level += 1
        if level > MAX_NESTING:
            raise ManifestError(f"the document nests arrays and objects more than {MAX_NESTING} levels deep", where=url)
        current = [
            child
            for node in current
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]


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


def parse_stored(stored, leaving_out: str) -> Manifest | None:
    """Parse a manifest record the store kept (``StoredManifest``, or None when there is none); None too
    when it cannot be read, logged as LEAVING_OUT (who leaves the manifest out) with the reason."""
    if stored is None:
        return None
    try:
        return parse_manifest(stored.document, stored.url)
    except EnricherError as exc:
        log.warning("%s leaves manifest %s out: %s", leaving_out, stored.key, exc)
        return None


def select_canvases(manifest: Manifest, wanted: Sequence[str]) -> list[Canvas]:
    """The canvases WANTED names (ids or 0-based indexes), in that order; every canvas when it is empty.

    Raises RegionError naming those that are not in the manifest.
    """
    if not wanted:
        return list(manifest.canvases)
    by_key = {c.id: c for c in manifest.canvases} | {str(c.index): c for c in manifest.canvases}
    missing = [w for w in wanted if w not in by_key]
    if missing:
        raise RegionError(f"canvases {', '.join(missing)} are not in the manifest", where=manifest.url)
    return [by_key[w] for w in wanted]


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
            document = ref.document
            if document is None:
                document = fetcher.get_json(ref.url, local=ref.depth == 0)  # members are never local files
                _check_nesting(document, ref.url)
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

