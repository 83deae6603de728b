"""Plan IIIF Image API 2.x/3.0 requests within what a server says it can answer, load them, and map
pixels of the answer back to image and canvas coordinates.

A server that can cut any region and scale it (level 1 and 2, or level 0 declaring those features) gets
one request per :class:`ImageRequest`. A level-0 server gets only what its info.json lists: whole-image
``sizes`` and ``tiles`` on its grid, pasted together so regions and overlapping tiles work there too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .errors import ConfigError, ImageError, RegionError
from .geometry import MAX_SIDE, Box, pixel_size
from .jsonld import as_list

Region = tuple[int, int, int, int]

LIMITS = {"maxWidth": MAX_SIDE, "maxHeight": MAX_SIDE, "maxArea": MAX_SIDE**2}  # larger: no limit
MAX_GRID_PARTS = 1024  # tiles a level-0 plan may paste; a grid of more (tiny tiles) is not used
QUALITY_FORMAT = "0/default.jpg"  # no rotation, default quality, JPEG: required at every level
# Features each compliance level implies, per major version (only those the planner uses).
LEVEL_FEATURES = {
    2: {0: set(), 1: {"regionByPx", "sizeByW", "sizeByH"}, 2: {"regionByPx", "sizeByW", "sizeByH", "sizeByWh"}},
    3: {0: set(), 1: {"regionByPx", "sizeByW", "sizeByH", "sizeByWh"}, 2: {"regionByPx", "sizeByW", "sizeByH", "sizeByWh"}},
}


@dataclass(frozen=True)
class TileSet:
    width: int
    height: int
    scale_factors: tuple[int, ...]


@dataclass(frozen=True)
class ImageInfo:
    id: str
    version: int  # Image API major version, 2 or 3
    level: int
    width: int
    height: int
    sizes: tuple[tuple[int, int], ...] = ()
    tiles: tuple[TileSet, ...] = ()
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    features: frozenset[str] = frozenset()  # implied by the level plus those declared
    url: str = ""  # where the info.json was read

    @property
    def free(self) -> bool:
        """Whether the server cuts any pixel region and scales it (else only listed sizes and tiles)."""
        return "regionByPx" in self.features and bool({"sizeByW", "sizeByH", "sizeByWh"} & self.features)


@dataclass(frozen=True)
class ImagePart:
    url: str
    region: Region  # image pixels this part shows
    size: tuple[int, int]  # pixels the server is expected to deliver


@dataclass(frozen=True)
class ImageRequest:
    region: Region  # image pixels covered
    size: tuple[int, int]  # pixels of the assembled result
    parts: tuple[ImagePart, ...]


def _info_version(document: dict, url: str) -> int:
    kind = document.get("type") or document.get("@type")
    if kind in ("ImageService2", "ImageService3"):
        return int(kind[-1])
    for text in [*as_list(document.get("@context")), *as_list(document.get("profile"))]:
        match = re.search(r"iiif\.io/api/image/(\d+)/", text) if isinstance(text, str) else None
        if match:
            if match.group(1) not in ("2", "3"):
                break
            return int(match.group(1))
    raise ImageError(f"not a IIIF Image API 2 or 3 info.json (@context {document.get('@context')!r})", where=url)


def parse_info(document: dict, url: str) -> ImageInfo:
    """Read an Image API 2.x or 3.0 info.json; ImageError naming URL if it cannot be used."""
    version = _info_version(document, url)
    level, extras = None, {}
    for profile in as_list(document.get("profile")):
        if isinstance(profile, dict):
            extras.update(profile)  # 2.x: maxWidth, supports ... in the profile's object
        match = re.search(r"level([012])(\.json)?$", profile) if isinstance(profile, str) else None
        if match and level is None:
            level = int(match.group(1))
    if level is None:
        raise ImageError(f"no compliance level in profile {document.get('profile')!r}", where=url)
    width, height = pixel_size(document.get("width")), pixel_size(document.get("height"))
    if width is None or height is None:
        raise ImageError("info.json has no positive width and height", where=url)
    limit = {key: pixel_size(document.get(key, extras.get(key)), bound) for key, bound in LIMITS.items()}
    declared = as_list(document.get("extraFeatures") if version == 3 else extras.get("supports"))
    service_id = document.get("id") or document.get("@id") or url.removesuffix("/info.json")
    return ImageInfo(
        id=str(service_id).rstrip("/"),
        version=version,
        level=level,
        width=width,
        height=height,
        sizes=tuple(_sizes(document.get("sizes"))),
        tiles=tuple(_tiles(document.get("tiles"))),
        max_width=limit["maxWidth"],
        max_height=limit["maxHeight"] or limit["maxWidth"],  # the spec: maxHeight defaults to maxWidth
        max_area=limit["maxArea"],
        features=frozenset(LEVEL_FEATURES[version][level] | {f for f in declared if isinstance(f, str)}),
        url=url,
    )


def _sizes(value: Any):
    for size in as_list(value):
        if isinstance(size, dict):
            width, height = pixel_size(size.get("width")), pixel_size(size.get("height"))
            if width and height:
                yield width, height


def _tiles(value: Any):
    for tile in as_list(value):
        if not isinstance(tile, dict) or not pixel_size(tile.get("width")):
            continue
        width = pixel_size(tile["width"])
        factors = tuple(sorted({f for f in map(pixel_size, as_list(tile.get("scaleFactors"))) if f}))
        if factors:
            yield TileSet(width, pixel_size(tile.get("height")) or width, factors)


def read_info(service_id: str, fetcher) -> ImageInfo:
    """Fetch and parse the info.json of an image service."""
    url = f"{service_id.rstrip('/')}/info.json"
    return parse_info(fetcher.get_json(url), url)


def _within_limits(info: ImageInfo, width: int, height: int) -> bool:
    return (
        (info.max_width is None or width <= info.max_width)
        and (info.max_height is None or height <= info.max_height)
        and (info.max_area is None or width * height <= info.max_area)
    )


def _clip(info: ImageInfo, region: Region) -> Region:
    x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
    x1, y1 = min(info.width, int(region[0] + region[2])), min(info.height, int(region[1] + region[3]))
    if x1 <= x0 or y1 <= y0:
        raise RegionError(f"region {tuple(region)} lies outside the image {info.width}x{info.height}", where=info.id)
    return x0, y0, x1 - x0, y1 - y0


def _region_param(info: ImageInfo, region: Region) -> str:
    return "full" if region == (0, 0, info.width, info.height) else ",".join(map(str, region))


def _url(info: ImageInfo, region: str, size: str) -> str:
    return f"{info.id}/{region}/{size}/{QUALITY_FORMAT}"


def _plan_free(info: ImageInfo, region: Region, scale: float) -> ImageRequest:
    """One request: REGION scaled by SCALE, never up, shrunk further to the server's maxima."""
    _, _, rw, rh = region
    scale = min(scale, 1.0)
    if info.max_width:
        scale = min(scale, info.max_width / rw)
    if info.max_height:
        scale = min(scale, info.max_height / rh)
    if info.max_area:
        scale = min(scale, math.sqrt(info.max_area / (rw * rh)))
    width, height = max(1, round(rw * scale)), max(1, round(rh * scale))
    if not _within_limits(info, width, height):  # rounding went over a maximum
        width, height = max(1, math.floor(rw * scale)), max(1, math.floor(rh * scale))
    if (width, height) == (rw, rh):
        size = "max" if info.version == 3 else "full"
    elif "sizeByWh" in info.features:
        size = f"{width},{height}"
    elif "sizeByH" not in info.features or (width >= height and "sizeByW" in info.features):
        size = f"{width},"  # the server derives the height; load_request absorbs a pixel of difference
    else:
        size = f",{height}"
    url = _url(info, _region_param(info, region), size)
    return ImageRequest(region, (width, height), (ImagePart(url, region, (width, height)),))


def _level0_options(info: ImageInfo, region: Region) -> list[tuple[float, ImageRequest]]:
    """Every way a level-0 server can answer REGION, with the scale each gives."""
    _, _, rw, rh = region
    options = []
    full = (0, 0, info.width, info.height)
    for width, height in info.sizes:
        if not _within_limits(info, width, height):
            continue
        size = f"{width},{height}" if info.version == 3 else f"{width},"
        part = ImagePart(_url(info, "full", size), full, (width, height))
        result = (max(1, round(rw * width / info.width)), max(1, round(rh * height / info.height)))
        options.append((width / info.width, ImageRequest(region, result, (part,))))
    for tiles in info.tiles:
        if not _within_limits(info, tiles.width, tiles.height):
            continue
        for factor in tiles.scale_factors:
            parts = _grid_parts(info, tiles, factor, region)
            if parts:
                result = (max(1, round(rw / factor)), max(1, round(rh / factor)))
                options.append((1 / factor, ImageRequest(region, result, parts)))
    if not options:  # nothing listed: the whole image at the largest size allowed is all level 0 promises
        scale = min(
            1.0,
            info.max_width / info.width if info.max_width else 1.0,
            info.max_height / info.height if info.max_height else 1.0,
            math.sqrt(info.max_area / (info.width * info.height)) if info.max_area else 1.0,
        )
        size = (max(1, math.floor(info.width * scale)), max(1, math.floor(info.height * scale)))
        part = ImagePart(_url(info, "full", "max" if info.version == 3 else "full"), full, size)
        options.append((scale, ImageRequest(region, (max(1, round(rw * scale)), max(1, round(rh * scale))), (part,))))
    return options


def _grid_parts(info: ImageInfo, tiles: TileSet, factor: int, region: Region) -> tuple[ImagePart, ...]:
    """The server tiles at scale FACTOR that cover REGION (none when one tile would be the whole image,
    which level-0 servers answer only as a listed size, or when more than MAX_GRID_PARTS would)."""
    span_w, span_h = tiles.width * factor, tiles.height * factor
    if span_w >= info.width and span_h >= info.height:
        return ()
    rx, ry, rw, rh = region
    if math.ceil((rx % span_w + rw) / span_w) * math.ceil((ry % span_h + rh) / span_h) > MAX_GRID_PARTS:
        return ()
    parts = []
    for top in range(ry // span_h * span_h, ry + rh, span_h):
        for left in range(rx // span_w * span_w, rx + rw, span_w):
            cell = (left, top, min(span_w, info.width - left), min(span_h, info.height - top))
            width, height = math.ceil(cell[2] / factor), math.ceil(cell[3] / factor)
            size = f"{width},{height}" if info.version == 3 else f"{width},"
            parts.append(ImagePart(_url(info, ",".join(map(str, cell)), size), cell, (width, height)))
    return tuple(parts)


def plan_region(info: ImageInfo, region: Region, long_side: int) -> ImageRequest:
    """Plan REGION (image pixels) delivered with about LONG_SIDE pixels on its long side, never upscaled."""
    region = _clip(info, region)
    if info.free:
        return _plan_free(info, region, long_side / max(region[2], region[3]))
    options = sorted(_level0_options(info, region), key=lambda option: (option[0], len(option[1].parts)))
    wanted = min(long_side, max(region[2], region[3])) - 0.5
    for scale, request in options:
        if scale * max(region[2], region[3]) >= wanted:
            return request
    best = max(scale for scale, _ in options)
    return min((request for scale, request in options if scale == best), key=lambda request: len(request.parts))


def plan_whole(info: ImageInfo, long_side: int) -> ImageRequest:
    """Plan the whole image with about LONG_SIDE pixels on its long side."""
    return plan_region(info, (0, 0, info.width, info.height), long_side)


def tile_starts(start: int, length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of TILE pixels start along a span, spread evenly with steps of at most TILE - OVERLAP,
    so an object up to OVERLAP pixels long lies whole in one tile: the last tile starting at or before
    the object's start ends at least OVERLAP pixels after the next tile's start, which is past the object's."""
    if length <= tile:
        return [start]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return [start + (i * (length - tile)) // (count - 1) for i in range(count)]


def plan_tiles(info: ImageInfo, region: Region, tile: int, overlap: int) -> list[ImageRequest]:
    """Cover REGION with tiles of TILE image pixels overlapping by at least OVERLAP pixels, each at full
    resolution or the nearest the server allows; edge tiles end at the region's edge."""
    if tile < 1 or not 0 <= overlap < tile:
        raise ConfigError(f"tile_overlap {overlap} must be at least 0 and below tile_size {tile}, which must be positive")
    rx, ry, rw, rh = _clip(info, region)
    width, height = min(tile, rw), min(tile, rh)
    return [
        plan_region(info, (x, y, width, height), max(width, height))
        for y in tile_starts(ry, rh, tile, overlap)
        for x in tile_starts(rx, rw, tile, overlap)
    ]


def load_request(request: ImageRequest, fetcher) -> Image.Image:
    """Fetch the parts of REQUEST and paste them into one RGB image of ``request.size``."""
    rx, ry, rw, rh = request.region
    if len(request.parts) == 1 and request.parts[0].region == request.region:  # the usual case: nothing to paste
        image = fetcher.get_image(request.parts[0].url)
        return image if image.size == request.size else image.resize(request.size)
    sx, sy = request.size[0] / rw, request.size[1] / rh
    result = Image.new("RGB", request.size)
    for part in request.parts:
        px, py, pw, ph = part.region
        left, top = round((px - rx) * sx), round((py - ry) * sy)
        right, bottom = round((px + pw - rx) * sx), round((py + ph - ry) * sy)
        image = fetcher.get_image(part.url)
        if image.size != (right - left, bottom - top):
            image = image.resize((right - left, bottom - top))
        result.paste(image, (left, top))
    return result


def to_image_box(box: Box, request: ImageRequest, delivered: tuple[int, int]) -> Box:
    """Map a box in pixels of a DELIVERED image answering REQUEST to image pixels."""
    rx, ry, rw, rh = request.region
    sx, sy = rw / delivered[0], rh / delivered[1]
    return rx + box[0] * sx, ry + box[1] * sy, box[2] * sx, box[3] * sy


def image_to_canvas(box: Box, image_size: tuple[int, int], canvas_size: tuple[int, int]) -> Box:
    """Map a box in image pixels to canvas coordinates (the image is stretched over the whole canvas)."""
    sx, sy = canvas_size[0] / image_size[0], canvas_size[1] / image_size[1]
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def canvas_to_image(box: Box, image_size: tuple[int, int], canvas_size: tuple[int, int]) -> Box:
    """Map a box in canvas coordinates to image pixels."""
    return image_to_canvas(box, canvas_size, image_size)
