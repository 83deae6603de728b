"""Read what a canvas paints: each image with the part of it a selector shows and the canvas rectangle
it fills, a Choice's default item, or why there is nothing to look at (sound, video, text, nothing
painted). A painting annotation that names no usable image is a ManifestError with its JSON pointer."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from .errors import ManifestError
from .geometry import Box, parse_fragment, pixel_size
from .jsonld import as_list

NUMBER = r"(\d+(?:\.\d+)?)"
IMAGE_API_REGION = re.compile(rf"(pct:)?{NUMBER},{NUMBER},{NUMBER},{NUMBER}")
ROTATION = re.compile(rf"(!?){NUMBER}")
IMAGE_TYPES = {"Image", "dctypes:Image", "dcTypes:Image"}
CHOICE_TYPES = {"Choice", "oa:Choice"}
SPECIFIC_TYPES = {"SpecificResource", "oa:SpecificResource"}
IMAGE_API_SELECTORS = {"ImageApiSelector", "iiif:ImageApiSelector"}
FRAGMENT_SELECTORS = {"FragmentSelector", "oa:FragmentSelector"}
NOT_VISUAL_FORMATS = ("audio/", "video/", "text/", "application/")


@dataclass(frozen=True)
class Fragment:
    """A rectangle in pixels or in percent of the whole, or the whole's centred square."""

    unit: str  # pixel | percent | square
    box: Box = (0.0, 0.0, 0.0, 0.0)

    def resolve(self, width: float, height: float) -> Box:
        """Return the rectangle in pixels of a WIDTH x HEIGHT whole."""
        if self.unit == "square":
            side = min(width, height)
            return (width - side) / 2, (height - side) / 2, side, side
        if self.unit == "percent":
            x, y, w, h = self.box
            return x * width / 100, y * height / 100, w * width / 100, h * height / 100
        return self.box


@dataclass(frozen=True)
class PaintedImage:
    """One image a canvas paints, and how it is shown there."""

    url: str | None  # the image itself, read when there is no image service
    service_id: str | None
    service_version: int | None
    width: int | None  # as the manifest declares it
    height: int | None
    crop: Fragment | None = None  # the part shown (a selector); None: the whole image
    rotation: int = 0  # degrees clockwise, after mirroring
    mirror: bool = False
    target: Fragment | None = None  # the canvas rectangle it fills; None: the whole canvas

    def shown_size(self) -> tuple[int, int] | None:
        """The declared size of the part shown, turned as shown; None when the manifest gives no size."""
        if self.width is None or self.height is None:
            return None
        _, _, w, h = self.crop.resolve(self.width, self.height) if self.crop else (0, 0, self.width, self.height)
        return (round(h), round(w)) if self.rotation in (90, 270) else (round(w), round(h))


def read_fragment(text: str) -> Fragment | None:
    """Read ``xywh=[pixel:|percent:]x,y,w,h`` (``xywh=`` optional); None unless it is one with an area."""
    found = parse_fragment(text)
    return Fragment(*found) if found and found[1][2] > 0 and found[1][3] > 0 else None


def positive_size(obj: dict, key: str) -> int | None:
    """Return OBJ[KEY] as a size in pixels (geometry.pixel_size; also when written as a string of digits),
    else None."""
    value = obj.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:  # some 2.x manifests write "1200"
        value = int(value)
    return pixel_size(value)


def read_painting(canvas: dict, version: int, pointer: str) -> tuple[tuple[PaintedImage, ...], str | None]:
    """Return the images CANVAS (at POINTER) paints and, when it paints none, why it is skipped.

    Raises ManifestError, with the pointer of the annotation at fault, when a painting annotation names
    no usable image: no body (v2: no resource), a body that is not an object, an image without an id, a
    selector or target that cannot be applied. None of its annotations motivated painting is one too.
    """
    paintings = _paintings_v2(canvas, pointer) if version == 2 else _paintings_v3(canvas, pointer)
    if not paintings:
        placeholder = " (only a placeholder canvas)" if canvas.get("placeholderCanvas") else ""
        return (), f"nothing is painted on it{placeholder}"
    images, other = [], []
    for body, body_pointer, target, target_pointer in paintings:
        if not as_list(body):
            raise ManifestError("its painting annotation has no body", pointer=body_pointer.rsplit("/", 1)[0])
        placed = _target(target, target_pointer)
        for n, item in enumerate(as_list(body)):
            found = _body(item, f"{body_pointer}/{n}" if isinstance(body, list) else body_pointer)
            if isinstance(found, PaintedImage):  # a copy only to place it: replace() is a tenth of a parse
                images.append(found if placed is None else replace(found, target=placed))
            else:
                other.append(found)
    if images:
        return tuple(images), None
    return (), f"nothing to look at: it paints {', '.join(sorted(set(other)))}"


def _paintings_v3(canvas: dict, pointer: str) -> list[tuple[Any, str, Any, str]]:
    """(body, its pointer, target, its pointer) of each painting annotation of a v3 canvas."""
    annotations = []
    for p, page in enumerate(as_list(canvas.get("items"))):
        if not isinstance(page, dict):
            raise ManifestError("an annotation page that is not an object", pointer=f"{pointer}/items/{p}")
        annotations.extend((f"{pointer}/items/{p}/items/{a}", item) for a, item in enumerate(as_list(page.get("items"))))
    paintings = []
    for where, annotation in annotations:
        if not isinstance(annotation, dict):
            raise ManifestError("an annotation that is not an object", pointer=where)
        if "painting" in as_list(annotation.get("motivation")):
            paintings.append((annotation.get("body"), f"{where}/body", annotation.get("target"), f"{where}/target"))
    if annotations and not paintings:
        raise ManifestError(f"none of its {len(annotations)} annotations has the motivation painting", pointer=f"{pointer}/items")
    return paintings


def _paintings_v2(canvas: dict, pointer: str) -> list[tuple[Any, str, Any, str]]:
    """(resource, its pointer, on, its pointer) of each image annotation of a v2 canvas."""
    paintings = []
    for n, annotation in enumerate(as_list(canvas.get("images"))):
        where = f"{pointer}/images/{n}"
        if not isinstance(annotation, dict):
            raise ManifestError("an image annotation that is not an object", pointer=where)
        if "resource" not in annotation:
            raise ManifestError("its image annotation has no resource", pointer=where)
        paintings.append((annotation["resource"], f"{where}/resource", annotation.get("on"), f"{where}/on"))
    return paintings


def _type(obj: dict) -> str | None:
    kind = obj.get("type") or obj.get("@type")
    return kind if isinstance(kind, str) else None


def _body(body: Any, pointer: str) -> PaintedImage | str:
    """The image BODY shows, or the kind of content it is when it shows none (Sound, Video ...)."""
    if not isinstance(body, dict):
        raise ManifestError(f"the painted body is a JSON {type(body).__name__}, not an object", pointer=pointer)
    kind = _type(body)
    if kind in CHOICE_TYPES:  # its default (v2) or first item: what a viewer shows first
        if isinstance(body.get("default"), dict):
            return _body(body["default"], f"{pointer}/default")
        key = "items" if "items" in body else "item"
        options = as_list(body.get(key))
        if not options:
            raise ManifestError("a Choice without items", pointer=pointer)
        return _body(options[0], f"{pointer}/{key}/0")
    if kind in SPECIFIC_TYPES:
        key = "source" if "source" in body else "full"
        source = body.get(key)
        found = _body({"id": source} if isinstance(source, str) else source, f"{pointer}/{key}")
        if isinstance(found, str):
            return found
        crop, rotation, mirror = _selection(as_list(body.get("selector")), f"{pointer}/selector")
        return replace(found, crop=crop, rotation=rotation, mirror=mirror)
    media = body.get("format") if isinstance(body.get("format"), str) else ""
    visual = kind in IMAGE_TYPES or media.startswith("image/") or (kind is None and not media.startswith(NOT_VISUAL_FORMATS))
    if not visual:
        return (kind or media).removeprefix("dctypes:")
    url = body.get("id") or body.get("@id")
    service_id, service_version = _service(body.get("service"))
    if not isinstance(url, str) and service_id is None:
        raise ManifestError("the painted image has no id and no image service", pointer=pointer)
    return PaintedImage(
        url=url if isinstance(url, str) else None,
        service_id=service_id,
        service_version=service_version,
        width=positive_size(body, "width"),
        height=positive_size(body, "height"),
    )


def _selection(selectors: list, pointer: str) -> tuple[Fragment | None, int, bool]:
    """(crop, rotation, mirror) from the first selector of an image that can be applied."""
    if not selectors:
        return None, 0, False
    for selector in selectors:
        kind = _type(selector) if isinstance(selector, dict) else None
        if kind in IMAGE_API_SELECTORS:
            return _image_api_region(selector.get("region", "full"), pointer), *_rotation(selector.get("rotation", 0), pointer)
        if kind in FRAGMENT_SELECTORS:
            value = selector.get("value") or selector.get("rdf:value")
            crop = read_fragment(value) if isinstance(value, str) else None
            if crop is None:
                raise ManifestError(f"FragmentSelector {value!r} is not xywh=x,y,w,h with an area", pointer=pointer)
            return crop, 0, False
    kinds = ", ".join(sorted({str(_type(s)) for s in selectors if isinstance(s, dict)})) or "none"
    raise ManifestError(f"no selector of the image can be applied (types: {kinds}; known: ImageApiSelector, "
                        "xywh FragmentSelector)", pointer=pointer)


def _image_api_region(value: Any, pointer: str) -> Fragment | None:
    text = str(value).strip()
    if text == "full":
        return None
    if text == "square":
        return Fragment("square")
    match = IMAGE_API_REGION.fullmatch(text)
    box = tuple(float(v) for v in match.groups()[1:]) if match else ()
    if not box or box[2] <= 0 or box[3] <= 0:
        raise ManifestError(f"ImageApiSelector region {text!r} is not full, square, x,y,w,h or pct:x,y,w,h", pointer=pointer)
    return Fragment("percent" if match.group(1) else "pixel", box)


def _rotation(value: Any, pointer: str) -> tuple[int, bool]:
    match = ROTATION.fullmatch(str(value).strip())
    degrees = float(match.group(2)) if match else -1.0
    if degrees < 0 or degrees % 90:
        raise ManifestError(f"ImageApiSelector rotation {value!r} is not a multiple of 90 degrees", pointer=pointer)
    return int(degrees) % 360, bool(match.group(1))


def _target(value: Any, pointer: str) -> Fragment | None:
    """The canvas rectangle an annotation's target (v2: ``on``) names; None for the whole canvas."""
    target = next(iter(as_list(value)), None)
    texts = []
    if isinstance(target, dict):  # a SpecificResource on the canvas
        texts = [s.get("value") for s in as_list(target.get("selector")) if isinstance(s, dict)]
        source = target.get("source") or target.get("full")
        source = source.get("id") or source.get("@id") if isinstance(source, dict) else source
        texts.append(source)
    elif isinstance(target, str):
        texts.append(target)
    for text in texts:
        if not isinstance(text, str):
            continue
        for part in text.rsplit("#", 1)[-1].split("&"):
            if part.startswith("xywh="):
                fragment = read_fragment(part)
                if fragment is None:
                    raise ManifestError(f"target {part!r} is not xywh=x,y,w,h with an area", pointer=pointer)
                return fragment
    return None


def _service_version(service: dict) -> int | None:
    """Return the Image API major version of a service object, or None if it is not a v2/v3 image service."""
    kind = _type(service)
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
