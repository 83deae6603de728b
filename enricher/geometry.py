"""Boxes: the one box type, the one ``xywh`` parser and the overlap of two boxes.

A box is ``(x, y, w, h)`` in pixels of whatever it lies on (a canvas, an image, a tile): the origin at
the top left, width and height to the right and down, as in the W3C Media Fragments ``xywh=``.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import RegionError

Box = tuple[float, float, float, float]  # x, y, w, h
MAX_SIDE = 10**9  # pixels on a side: no real image is larger, and larger numbers overflow float arithmetic

_NUMBER = r"\d+(?:\.\d+)?"


def _xywh_pattern(negative_origin: bool, bare: bool) -> re.Pattern:
    prefix = r"(?:xywh=(?:pixel:)?)" + ("?" if bare else "")
    sign = "-?" if negative_origin else ""  # a box may reach over the top or left edge
    return re.compile(rf"{prefix}({sign}{_NUMBER}),({sign}{_NUMBER}),({_NUMBER}),({_NUMBER})")


# compiled once: the store parses the target of every annotation it writes
_XYWH = {(negative, bare): _xywh_pattern(negative, bare) for negative in (False, True) for bare in (False, True)}
_XYWH_UNIT = re.compile(rf"(?:xywh=)?(?:(pixel|percent):)?({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})")


def pixel_size(value: Any, limit: int = MAX_SIDE) -> int | None:
    """VALUE as a whole number of pixels from 1 to LIMIT (a number, floored), else None: not a number,
    below one, not finite or past LIMIT."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= limit:
        return int(value)
    return None


def parse_xywh(text: str, *, negative_origin: bool = False, bare: bool = False) -> Box | None:
    """Parse the media fragment ``xywh=x,y,w,h`` (``xywh=pixel:`` too) into a box; None when TEXT is
    not one (``percent:`` included). NEGATIVE_ORIGIN accepts an x or y below 0; BARE accepts plain
    ``x,y,w,h`` too."""
    found = _XYWH[negative_origin, bare].fullmatch(text)
    return None if found is None else tuple(map(float, found.groups()))


def parse_fragment(text: str) -> tuple[str, Box] | None:
    """Parse ``xywh=[pixel:|percent:]x,y,w,h`` (``xywh=`` optional) into its unit (pixel, percent) and
    box; None when TEXT is not one."""
    found = _XYWH_UNIT.fullmatch(text.strip())
    return None if found is None else (found.group(1) or "pixel", tuple(map(float, found.groups()[1:])))


def parse_region(text: str) -> Box:
    """Parse a region a person asks for, ``xywh=x,y,w,h`` or ``x,y,w,h`` in canvas coordinates.

    Raises RegionError for anything else, and for a region without area.
    """
    box = parse_xywh(text.strip(), bare=True)
    if box is None:
        raise RegionError(f"region {text!r} is not xywh=x,y,w,h with non-negative numbers")
    if box[2] <= 0 or box[3] <= 0:
        raise RegionError(f"region {text!r} has no area")
    return box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)
