"""Draw synthetic "old scan" images with known boxes, for the demo model and the tests.

Each object is a flat drawing of a COCO class (dog, horse, bird, clock, book, cup, stop sign) in a
varied size, shade, aspect and rotation, pasted onto textured paper; grain, blur and a sepia cast are
then applied to the whole page, so objects and paper age together. Everything follows from the seed.
``make_image`` draws pages and the sample canvases; ``make_scan`` draws large scans with objects from
tiny to larger than a tile, many of them across given tile borders, for the tiled-mode tests and benchmark.

    python samples/synth.py --out samples/images     # the sample canvases and truth.json
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Order is the class id order of the demo model.
CLASSES = ("dog", "horse", "bird", "clock", "book", "cup", "stop sign")

Box = tuple[int, int, int, int]  # x, y, w, h (top-left origin)
Object = tuple[str, int, int, int, int]  # class name, x, y, w, h

Points = list[tuple[float, float]]
Painter = Callable[[ImageDraw.ImageDraw, int, int, np.random.Generator], None]


def _shade(rng: np.random.Generator, base: tuple[int, int, int], spread: int) -> tuple[int, int, int]:
    """Vary a colour by a common brightness shift plus a little per channel."""
    shift = rng.integers(-spread, spread + 1)
    return tuple(int(np.clip(c + shift + rng.integers(-spread // 3, spread // 3 + 1), 0, 255)) for c in base)


def _scaled(points: Points, w: int, h: int) -> Points:
    return [(x * w, y * h) for x, y in points]


def _ellipse(draw: ImageDraw.ImageDraw, w: int, h: int, box: tuple[float, float, float, float], fill) -> None:
    x0, y0, x1, y1 = box
    draw.ellipse((x0 * w, y0 * h, x1 * w, y1 * h), fill=fill)


def _dog(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a light brown dog standing: short legs, drooping ear, tail up."""
    coat = _shade(rng, (176, 120, 62), 30)
    dark = tuple(int(c * 0.55) for c in coat)
    body = [(0.16, 0.38), (0.70, 0.36), (0.76, 0.48), (0.74, 0.66), (0.20, 0.68), (0.13, 0.55)]
    draw.polygon(_scaled(body, w, h), fill=coat)
    for x in (0.18, 0.30, 0.60, 0.70):  # legs
        draw.polygon(_scaled([(x, 0.6), (x + 0.07, 0.6), (x + 0.07, 0.97), (x, 0.97)], w, h), fill=coat)
    draw.polygon(_scaled([(0.68, 0.42), (0.80, 0.16), (0.90, 0.18), (0.80, 0.50)], w, h), fill=coat)  # neck
    _ellipse(draw, w, h, (0.74, 0.06, 0.93, 0.32), coat)  # head
    draw.polygon(_scaled([(0.88, 0.16), (1.0, 0.22), (0.99, 0.30), (0.88, 0.30)], w, h), fill=coat)  # snout
    draw.polygon(_scaled([(0.76, 0.10), (0.82, 0.08), (0.80, 0.34), (0.73, 0.30)], w, h), fill=dark)  # ear
    draw.polygon(_scaled([(0.17, 0.42), (0.02, 0.12), (0.06, 0.10), (0.20, 0.38)], w, h), fill=coat)  # tail
    _ellipse(draw, w, h, (0.97, 0.21, 1.0, 0.25), (20, 20, 20))  # nose


def _horse(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a dark horse: long thin legs, raised neck, long head, mane and hanging tail."""
    coat = _shade(rng, (84, 50, 30), 22)
    mane = tuple(int(c * 0.4) for c in coat)
    body = [(0.16, 0.30), (0.70, 0.28), (0.78, 0.36), (0.76, 0.55), (0.18, 0.56), (0.12, 0.42)]
    draw.polygon(_scaled(body, w, h), fill=coat)
    for x, lean in ((0.17, -0.03), (0.26, 0.02), (0.64, -0.02), (0.72, 0.03)):  # legs
        draw.polygon(_scaled([(x, 0.5), (x + 0.06, 0.5), (x + 0.05 + lean, 0.98), (x + lean, 0.98)], w, h), fill=coat)
    draw.polygon(_scaled([(0.64, 0.34), (0.80, 0.02), (0.90, 0.04), (0.80, 0.42)], w, h), fill=coat)  # neck
    draw.polygon(_scaled([(0.80, 0.02), (0.90, 0.0), (1.0, 0.22), (0.96, 0.27), (0.86, 0.16)], w, h), fill=coat)
    draw.polygon(_scaled([(0.64, 0.30), (0.78, 0.02), (0.81, 0.04), (0.69, 0.34)], w, h), fill=mane)  # mane
    draw.polygon(_scaled([(0.14, 0.32), (0.06, 0.40), (0.03, 0.75), (0.08, 0.76), (0.15, 0.42)], w, h), fill=mane)


def _bird(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a perched blue bird with an orange breast, beak, tail and thin legs."""
    back = _shade(rng, (46, 92, 176), 30)
    breast = _shade(rng, (226, 128, 52), 20)
    draw.polygon(_scaled([(0.0, 0.42), (0.32, 0.46), (0.32, 0.60), (0.04, 0.56)], w, h), fill=back)  # tail
    _ellipse(draw, w, h, (0.22, 0.28, 0.80, 0.78), back)  # body
    _ellipse(draw, w, h, (0.46, 0.44, 0.80, 0.80), breast)
    _ellipse(draw, w, h, (0.60, 0.08, 0.90, 0.46), back)  # head
    draw.polygon(_scaled([(0.88, 0.22), (1.0, 0.28), (0.88, 0.33)], w, h), fill=(230, 170, 40))  # beak
    _ellipse(draw, w, h, (0.76, 0.18, 0.81, 0.24), (15, 15, 15))  # eye
    draw.polygon(_scaled([(0.30, 0.40), (0.60, 0.38), (0.50, 0.62), (0.26, 0.58)], w, h),
                 fill=tuple(int(c * 0.6) for c in back))  # wing
    for x in (0.46, 0.58):
        draw.line(_scaled([(x, 0.76), (x, 1.0)], w, h), fill=(60, 40, 20), width=max(1, w // 40))


def _clock(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a round wall clock: dark rim, cream face, twelve ticks, two hands."""
    rim = _shade(rng, (40, 40, 48), 25)
    face = _shade(rng, (246, 240, 222), 8)
    draw.ellipse((0, 0, w - 1, h - 1), fill=rim)
    t = 0.08
    draw.ellipse((w * t, h * t, w * (1 - t), h * (1 - t)), fill=face)
    cx, cy, rx, ry = w / 2, h / 2, w * 0.38, h * 0.38
    for k in range(12):
        a = k * math.pi / 6
        inner = 0.78 if k % 3 else 0.66
        draw.line([(cx + rx * inner * math.cos(a), cy + ry * inner * math.sin(a)),
                   (cx + rx * math.cos(a), cy + ry * math.sin(a))], fill=rim, width=max(1, w // 30))
    for length, angle in ((0.55, rng.uniform(0, 2 * math.pi)), (0.85, rng.uniform(0, 2 * math.pi))):
        draw.line([(cx, cy), (cx + rx * length * math.sin(angle), cy - ry * length * math.cos(angle))],
                  fill=rim, width=max(1, w // 18))


def _book(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a closed book from the front: coloured cover, darker spine, page edges, gold title."""
    cover = [(150, 30, 36), (30, 100, 56), (30, 44, 110)][rng.integers(3)]
    cover = _shade(rng, cover, 20)
    draw.rectangle((0, 0, w - 1, h - 1), fill=(236, 226, 196))  # pages showing
    draw.rectangle((0, 0, int(w * 0.94), int(h * 0.97)), fill=cover)
    draw.rectangle((0, 0, int(w * 0.14), int(h * 0.97)), fill=tuple(int(c * 0.6) for c in cover))
    for k in range(1, 4):  # page lines
        x = w * (0.94 + 0.015 * k)
        draw.line([(x, h * 0.02), (x, h * 0.99)], fill=(190, 176, 140), width=1)
    gold = (212, 176, 76)
    draw.rectangle((w * 0.30, h * 0.18, w * 0.82, h * 0.34), outline=gold, width=max(1, w // 24))
    draw.line([(w * 0.30, h * 0.82), (w * 0.82, h * 0.82)], fill=gold, width=max(1, w // 30))


def _cup(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a cup in profile on its saucer: tapered body with a band, round handle at the right."""
    body = _shade(rng, (232, 236, 240), 12)
    band = [(36, 130, 150), (190, 60, 60), (50, 70, 150)][rng.integers(3)]
    line = (90, 90, 100)
    draw.ellipse((w * 0.60, h * 0.22, w * 0.98, h * 0.66), fill=line)  # handle
    draw.ellipse((w * 0.68, h * 0.32, w * 0.90, h * 0.56), fill=(0, 0, 0, 0))
    draw.polygon(_scaled([(0.06, 0.08), (0.78, 0.08), (0.68, 0.86), (0.16, 0.86)], w, h), fill=body, outline=line)
    draw.polygon(_scaled([(0.08, 0.22), (0.76, 0.22), (0.74, 0.34), (0.10, 0.34)], w, h), fill=band)
    _ellipse(draw, w, h, (0.06, 0.03, 0.78, 0.14), tuple(int(c * 0.8) for c in body))  # rim
    _ellipse(draw, w, h, (0.0, 0.82, 0.86, 1.0), body)  # saucer
    draw.arc((0, h * 0.82, w * 0.86, h - 1), 0, 180, fill=line, width=max(1, w // 40))


def _stop_sign(draw: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    """Draw a red octagon with a white border and the word STOP."""
    red = _shade(rng, (196, 28, 34), 20)
    octagon = [(0.5 + 0.5 * math.cos(math.pi / 8 + k * math.pi / 4), 0.5 + 0.5 * math.sin(math.pi / 8 + k * math.pi / 4))
               for k in range(8)]
    draw.polygon(_scaled(octagon, w, h), fill=(245, 245, 245))
    inner = [(0.5 + 0.92 * (x - 0.5), 0.5 + 0.92 * (y - 0.5)) for x, y in octagon]
    draw.polygon(_scaled(inner, w, h), fill=red)
    font = ImageFont.load_default(size=max(6, int(h * 0.28)))
    draw.text((w / 2, h / 2), "STOP", fill=(250, 250, 250), font=font, anchor="mm")


# Class name -> (painter, aspect range w/h, whether mirroring keeps it plausible).
SHAPES: dict[str, tuple[Painter, tuple[float, float], bool]] = {
    "dog": (_dog, (1.25, 1.6), True),
    "horse": (_horse, (1.0, 1.3), True),
    "bird": (_bird, (1.05, 1.4), True),
    "clock": (_clock, (0.9, 1.1), False),
    "book": (_book, (0.62, 0.8), False),
    "cup": (_cup, (1.05, 1.3), True),
    "stop sign": (_stop_sign, (0.92, 1.08), False),
}


def draw_object(name: str, long_side: int, rng: np.random.Generator) -> Image.Image:
    """Return one object as an RGBA image, tightly cropped, its long side about ``long_side`` px."""
    painter, (lo, hi), mirror = SHAPES[name]
    aspect = rng.uniform(lo, hi)
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    scale = 3  # draw larger and shrink: smooth edges on small objects
    sprite = Image.new("RGBA", (w * scale, h * scale), (0, 0, 0, 0))
    painter(ImageDraw.Draw(sprite), w * scale, h * scale, rng)
    sprite = sprite.resize((w, h), Image.LANCZOS)
    if mirror and rng.random() < 0.5:
        sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
    sprite = sprite.rotate(rng.uniform(-15, 15), resample=Image.BICUBIC, expand=True)
    return sprite.crop(sprite.getchannel("A").point(lambda a: 255 if a > 96 else 0).getbbox())


def paper(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Return an aged paper background (float32 H x W x 3): mottled tint, fibres, foxing stains."""
    w, h = size
    base = np.array(_shade(rng, (236, 224, 196), 12), dtype=np.float32)
    coarse = rng.normal(0, 1, (max(2, h // 48), max(2, w // 48))).astype(np.float32)
    mottle = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC))
    page = base + mottle[..., None] * np.float32(6)
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    area = w * h / 1e5
    for _ in range(int(rng.integers(0, 4) * area / 4 + 1)):  # foxing: soft brown spots
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 25)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(20, 60)))
    for _ in range(int(rng.integers(2, 8) * area)):  # fibres: short faint strokes
        x, y, a, n = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, math.pi), rng.uniform(4, 18)
        draw.line([(x, y), (x + n * math.cos(a), y + n * math.sin(a))], fill=int(rng.integers(15, 40)), width=1)
    stain = np.asarray(layer.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32)[..., None] / 255
    page = page * (1 - stain) + np.array([150, 110, 60], np.float32) * stain
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    page *= (1 - 0.08 * (xx**2 + yy**2) / 2)[..., None]  # darker edges, as on a scanned leaf
    return page


def _print_lines(image: Image.Image, rng: np.random.Generator, taken: list[Box]) -> None:
    """Add grey text-like lines in free space: clutter the model must learn to ignore."""
    w, h = image.size
    draw = ImageDraw.Draw(image)
    ink = _shade(rng, (70, 62, 54), 20)
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.95)
        height = rng.uniform(3, 8)
        for row in range(int(rng.integers(1, 6))):
            cx, cy = x, y + row * height * 1.8
            for _ in range(int(rng.integers(3, 10))):
                word = rng.uniform(height, height * 5)
                box = (int(cx), int(cy), int(word) + 1, int(height) + 1)
                if not any(_overlaps(box, t, 2) for t in taken):
                    draw.rectangle((cx, cy, cx + word, cy + height * 0.6), fill=ink)
                cx += word + height


def _overlaps(a: Box, b: Box, margin: int) -> bool:
    return not (a[0] + a[2] + margin <= b[0] or b[0] + b[2] + margin <= a[0]
                or a[1] + a[3] + margin <= b[1] or b[1] + b[3] + margin <= a[1])


def _age(page: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Age the whole page: sepia cast, grain, slight blur; return an RGB image."""
    grey = page @ np.array([0.299, 0.587, 0.114], np.float32)
    sepia = grey[..., None] * np.array([1.0, 0.9, 0.72], np.float32)
    mix = np.float32(rng.uniform(0.0, 0.3))
    page = page * (1 - mix) + sepia * mix
    page += rng.normal(0, rng.uniform(3, 9), page.shape[:2]).astype(np.float32)[..., None]
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))


def make_image(seed: int, size: tuple[int, int] = (320, 320), n_objects: int = 4,
               min_obj: int = 24, max_obj: int = 160) -> tuple[Image.Image, list[Object]]:
    """Draw one page with up to ``n_objects`` non-overlapping objects; return it and the true boxes.

    Object long sides are drawn log-uniformly from [min_obj, max_obj] px. Fewer objects are placed
    when the page has no room left; the returned list holds exactly those drawn.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    canvas = Image.fromarray(np.clip(paper(size, rng), 0, 255).astype(np.uint8))
    objects: list[Object] = []
    for _ in range(n_objects):
        name = CLASSES[rng.integers(len(CLASSES))]
        long_side = int(round(math.exp(rng.uniform(math.log(min_obj), math.log(max_obj)))))
        sprite = draw_object(name, min(long_side, w - 2, h - 2), rng)
        sw, sh = sprite.size
        if sw >= w or sh >= h:
            continue
        for _ in range(60):
            box = (int(rng.integers(0, w - sw)), int(rng.integers(0, h - sh)), sw, sh)
            if not any(_overlaps(box, o[1:], 4) for o in objects):
                canvas.paste(sprite, box[:2], sprite)
                objects.append((name, *box))
                break
    _print_lines(canvas, rng, [o[1:] for o in objects])
    return _age(np.asarray(canvas, dtype=np.float32), rng), objects


def make_scan(seed: int, size: tuple[int, int] = (6400, 4800), n_objects: int = 48, min_obj: int = 20,
              max_obj: int = 1400, lines: tuple[Sequence[int], Sequence[int]] = ((), ()),
              across: float = 0.6) -> tuple[Image.Image, list[Object]]:
    """Draw a large scan holding objects of every size; return it and the true boxes.

    Long sides are spread evenly on a log scale over [min_obj, max_obj], so tiny, medium and large objects
    all occur. About ACROSS of the objects are centred on a border in LINES (x positions of vertical
    borders, y positions of horizontal ones): on a vertical one, a horizontal one or a crossing of both,
    in turn, so tiling cuts them. Larger objects are placed first; one that finds no room is left out.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    canvas = Image.fromarray(np.clip(paper(size, rng), 0, 255).astype(np.uint8))
    steps = np.linspace(math.log(min_obj), math.log(max_obj), n_objects)
    sides = sorted((int(round(math.exp(s + rng.uniform(-0.05, 0.05)))) for s in steps), reverse=True)
    xs, ys = list(lines[0]), list(lines[1])
    objects: list[Object] = []
    for k, long_side in enumerate(sides):
        name = CLASSES[rng.integers(len(CLASSES))]
        sprite = draw_object(name, min(long_side, max_obj, w - 2, h - 2), rng)
        sw, sh = sprite.size
        straddle = ("x", "y", "xy")[k % 3] if rng.random() < across else ""
        for _ in range(200):
            x, y = int(rng.integers(0, w - sw)), int(rng.integers(0, h - sh))
            if "x" in straddle and xs:  # the border at a random place inside the object, away from its ends
                x = int(xs[rng.integers(len(xs))] - sw * rng.uniform(0.3, 0.7))
            if "y" in straddle and ys:
                y = int(ys[rng.integers(len(ys))] - sh * rng.uniform(0.3, 0.7))
            box = (x, y, sw, sh)
            if 0 <= x <= w - sw and 0 <= y <= h - sh and not any(_overlaps(box, o[1:], 8) for o in objects):
                canvas.paste(sprite, box[:2], sprite)
                objects.append((name, *box))
                break
    _print_lines(canvas, rng, [o[1:] for o in objects])
    return _age(np.asarray(canvas, dtype=np.float32), rng), objects


# The sample canvases: (file, seed, size, objects, smallest, largest long side in px).
SAMPLES = (
    ("scene-1.jpg", 101, (1200, 900), 5, 60, 200),
    ("scene-2.jpg", 102, (1200, 900), 8, 60, 200),
    ("scene-3.jpg", 103, (900, 1200), 3, 60, 200),
    ("scene-4.jpg", 104, (1200, 900), 6, 60, 200),
    ("large.jpg", 105, (6000, 4000), 16, 40, 70),
)


def write_samples(out: Path, quality: int = 85) -> dict[str, list[dict]]:
    """Write the sample canvases and truth.json (file -> [{label, box: [x, y, w, h]}]) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[dict]] = {}
    for name, seed, size, count, lo, hi in SAMPLES:
        image, objects = make_image(seed, size, count, lo, hi)
        image.save(out / name, quality=quality)
        truth[name] = [{"label": o[0], "box": list(o[1:])} for o in objects]
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args()
    truth = write_samples(args.out)
    for name, objects in truth.items():
        print(f"{name}: {len(objects)} objects")


if __name__ == "__main__":
    main()
