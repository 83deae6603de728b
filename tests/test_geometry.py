"""The one xywh parser in each of its modes, the region a person asks for, and IoU."""

from __future__ import annotations

import pytest

from enricher.errors import RegionError
from enricher.geometry import iou, parse_region, parse_xywh


@pytest.mark.parametrize(
    ("text", "options", "box"),
    [
        ("xywh=1,2,3,4", {}, (1.0, 2.0, 3.0, 4.0)),
        ("xywh=pixel:1.5,2,3,4.25", {}, (1.5, 2.0, 3.0, 4.25)),
        ("xywh=-1,-2,3,4", {"negative_origin": True}, (-1.0, -2.0, 3.0, 4.0)),
        ("1,2,3,4", {"bare": True}, (1.0, 2.0, 3.0, 4.0)),
        ("xywh=1,2,3,4", {"bare": True}, (1.0, 2.0, 3.0, 4.0)),
    ],
)
def test_parse_xywh_reads_a_box(text, options, box):
    assert parse_xywh(text, **options) == box


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("xywh=percent:1,2,3,4", {}),  # not pixels
        ("xywh=-1,2,3,4", {}),  # negative origin only when asked for
        ("xywh=1,2,-3,4", {"negative_origin": True}),  # a size is never negative
        ("1,2,3,4", {}),  # bare only when asked for
        ("xywh=1,2,3", {"bare": True}),
        ("xywh=1,2,3,4,5", {}),
        ("xywh=1..2,2,3,4", {}),
        ("xywh=1,2,3,4 ", {}),
        ("", {"bare": True}),
    ],
)
def test_parse_xywh_refuses_anything_else(text, options):
    assert parse_xywh(text, **options) is None


def test_parse_region_takes_surrounding_space():
    assert parse_region(" xywh=0,0,10,20\n") == (0.0, 0.0, 10.0, 20.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [("xywh=1,2,three,4", "is not xywh=x,y,w,h with non-negative numbers"), ("0,0,0,5", "has no area")],
)
def test_parse_region_names_what_is_wrong(text, message):
    with pytest.raises(RegionError, match=message) as caught:
        parse_region(text)
    assert repr(text) in caught.value.detail


def test_iou_of_overlapping_touching_and_equal_boxes():
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (20, 0, 10, 10)) == 0.0
    assert iou((2, 3, 4, 5), (2, 3, 4, 5)) == 1.0
