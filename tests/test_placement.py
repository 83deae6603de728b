"""Where a painted image lands on its canvas (enricher.placement): boxes mapped both ways through a crop,
mirroring, a rotation and a target rectangle, and pixels turned the way the boxes are."""

from __future__ import annotations

import numpy as np
import pytest
from factories import gradient_image

from enricher.errors import ManifestError
from enricher.painting import Fragment, PaintedImage
from enricher.placement import place

TURNS = [(rotation, mirror) for rotation in (0, 90, 180, 270) for mirror in (False, True)]


def _image(rotation=0, mirror=False, crop=None, target=None, **declared) -> PaintedImage:
    return PaintedImage("http://images.test/a.jpg", "http://images.test/a", 3, declared.get("width"),
                        declared.get("height"), crop, rotation, mirror, target)


@pytest.mark.parametrize("rotation, mirror", TURNS)
def test_boxes_go_to_the_canvas_and_back(rotation, mirror):
    crop, target = Fragment("pixel", (100, 50, 600, 400)), Fragment("pixel", (30, 20, 1200, 800))
    placement = place(_image(rotation, mirror, crop, target), (1000, 700), (1300, 900), "c")
    box = (150.0, 80.0, 40.0, 30.0)
    on_canvas = placement.to_canvas(box)
    x, y, w, h = on_canvas
    assert 30 <= x and 20 <= y and x + w <= 1230 and y + h <= 820
    assert placement.to_image(on_canvas) == pytest.approx(box)
    corner = placement.to_canvas((100, 50, 600, 400))  # the whole crop fills the whole target
    assert corner == pytest.approx((30, 20, 1200, 800))


@pytest.mark.parametrize("rotation, mirror", TURNS)
def test_turned_pixels_and_unturned_boxes_agree(rotation, mirror):
    """A dark mark found in the turned picture maps back to where it is in the delivered one."""
    mark = (300, 100, 80, 50)
    picture = gradient_image(600, 400, mark)
    placement = place(_image(rotation, mirror), (600, 400), None, "c")
    turned = np.asarray(placement.turn(picture)).max(axis=2) < 10  # black: the mark, not the dark corner
    ys, xs = np.nonzero(turned)
    seen = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    box, delivered = placement.unturn(seen, turned.shape[::-1])
    assert delivered == (600, 400)
    assert box == pytest.approx(mark, abs=2)


def test_a_canvas_without_a_size_is_as_large_as_the_part_shown():
    placement = place(_image(90, crop=Fragment("percent", (0, 0, 50, 100))), (1000, 700), None, "c")
    assert placement.crop == (0, 0, 500, 700) and placement.target == (0, 0, 700, 500)


def test_a_selector_counts_the_declared_pixels_of_a_plain_image():
    plain = PaintedImage("http://images.test/a.jpg", None, None, 2000, 1400, Fragment("pixel", (1000, 0, 1000, 700)))
    assert place(plain, (1000, 700), (500, 350), "c").crop == (500, 0, 500, 350)  # the file came at half size


def test_a_region_outside_the_image_names_the_canvas():
    with pytest.raises(ManifestError, match="lies outside the 1000x700 image") as caught:
        place(_image(crop=Fragment("pixel", (2000, 0, 100, 100))), (1000, 700), (100, 100), "http://c/1")
    assert caught.value.where == "http://c/1"
