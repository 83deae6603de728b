"""Where a painted image lands on its canvas: the part of the image shown, mirrored and rotated as a
selector says, stretched over a canvas rectangle. Maps boxes between image pixels and canvas coordinates,
and turns fetched pixels the way they are shown, so the model sees the image upright."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .errors import ManifestError
from .imageapi import Box, image_to_canvas
from .painting import PaintedImage

# Pillow's transposes rotate counter-clockwise; IIIF rotates clockwise.
CLOCKWISE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class Placement:
    crop: Box  # image pixels shown
    rotation: int  # degrees clockwise, after mirroring
    mirror: bool
    target: Box  # the canvas rectangle the shown part fills

    @property
    def shown_size(self) -> tuple[float, float]:
        """The size of the shown part, turned as shown."""
        return _turned_frame((self.crop[2], self.crop[3]), self.rotation)

    def to_canvas(self, box: Box) -> Box:
        """Map a box in image pixels (inside the crop) to canvas coordinates."""
        x, y, w, h = box
        shown = turn_box((x - self.crop[0], y - self.crop[1], w, h), self.crop[2:], self.rotation, self.mirror)
        sx, sy, sw, sh = image_to_canvas(shown, self.shown_size, self.target[2:])
        return self.target[0] + sx, self.target[1] + sy, sw, sh

    def to_image(self, box: Box) -> Box:
        """Map a box in canvas coordinates (inside the target) to image pixels."""
        x, y, w, h = box
        shown = image_to_canvas((x - self.target[0], y - self.target[1], w, h), self.target[2:], self.shown_size)
        cx, cy, cw, ch = unturn_box(shown, self.shown_size, self.rotation, self.mirror)
        return self.crop[0] + cx, self.crop[1] + cy, cw, ch

    def unturn(self, box: Box, shown: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
        """Map BOX in a piece of the crop turned as shown (SHOWN pixels) back to the piece as delivered;
        return it with the delivered size."""
        delivered = _turned_frame(shown, self.rotation)
        return unturn_box(box, shown, self.rotation, self.mirror), (round(delivered[0]), round(delivered[1]))

    def turn(self, image: Image.Image) -> Image.Image:
        """Mirror and rotate IMAGE, a piece of the crop, as it is shown on the canvas."""
        if self.mirror:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image.transpose(CLOCKWISE[self.rotation]) if self.rotation else image


def place(image: PaintedImage, size: tuple[int, int], canvas: tuple[int, int] | None, where: str) -> Placement:
    """Place IMAGE, whose pixels are SIZE, on a canvas of size CANVAS (None: a canvas as large as the
    part shown). ManifestError naming WHERE when the selected part lies outside the image."""
    crop = (0.0, 0.0, float(size[0]), float(size[1]))
    if image.crop is not None:
        # a plain image may come smaller than the manifest declares; its selector counts declared pixels
        basis = (image.width, image.height) if image.service_id is None and image.width and image.height else size
        x, y, w, h = image.crop.resolve(*basis)
        fx, fy = size[0] / basis[0], size[1] / basis[1]
        x0, y0 = max(0.0, x * fx), max(0.0, y * fy)
        x1, y1 = min(float(size[0]), (x + w) * fx), min(float(size[1]), (y + h) * fy)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise ManifestError(f"the selected region {image.crop.box} lies outside the {size[0]}x{size[1]} image", where=where)
        crop = (x0, y0, x1 - x0, y1 - y0)
    shown = _turned_frame(crop[2:], image.rotation)
    canvas = canvas or (round(shown[0]), round(shown[1]))
    target = image.target.resolve(*canvas) if image.target else (0.0, 0.0, float(canvas[0]), float(canvas[1]))
    return Placement(crop, image.rotation, image.mirror, target)


def _turned_frame(frame, rotation: int) -> tuple[float, float]:
    return (frame[1], frame[0]) if rotation in (90, 270) else (frame[0], frame[1])


def _rotate(box: Box, frame, degrees: int) -> Box:
    """Rotate BOX inside a FRAME (w, h) clockwise by DEGREES (a multiple of 90)."""
    x, y, w, h = box
    width, height = frame
    if degrees == 90:
        return height - y - h, x, h, w
    if degrees == 180:
        return width - x - w, height - y - h, w, h
    if degrees == 270:
        return y, width - x - w, h, w
    return box


def turn_box(box: Box, frame, rotation: int, mirror: bool) -> Box:
    """Map BOX inside an unturned FRAME (w, h) to the frame mirrored, then rotated clockwise."""
    if mirror:
        box = (frame[0] - box[0] - box[2], box[1], box[2], box[3])
    return _rotate(box, frame, rotation)


def unturn_box(box: Box, shown, rotation: int, mirror: bool) -> Box:
    """Map BOX inside a turned frame of size SHOWN back to the frame before turning (turn_box undone)."""
    box = _rotate(box, shown, (360 - rotation) % 360)
    frame = _turned_frame(shown, rotation)
    if mirror:
        box = (frame[0] - box[0] - box[2], box[1], box[2], box[3])
    return box
