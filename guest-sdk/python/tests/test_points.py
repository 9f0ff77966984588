import math

import pytest

from waystream_guest import NO_ZONES, Lines, Output, Point, Points, Rejection, flags
from waystream_guest.testing import point


def test_rows_read_absent_values_as_none_and_write_back_into_the_columns():
    points = Points.of([point(0), point(1, alt_m=12.5, zones=0, speed_mps=1.5)])
    first, second = points
    assert first.alt_m is None and first.zones is None and first.speed_mps is None
    assert (second.alt_m, second.zones, second.speed_mps) == (12.5, 0, 1.5)
    assert math.isnan(points.alt_m[0]) and points.zones[0] == NO_ZONES

    first.flags |= flags.user(16)
    first.heading_deg = 90.0
    second.zones = None
    second.speed_mps = None
    assert points.flags == [0x10000, 0]
    assert points.heading_deg[0] == 90.0
    assert points.zones == [NO_ZONES, NO_ZONES]
    assert math.isnan(points.speed_mps[1])
    assert points[-1].as_point() == point(1, alt_m=12.5)


def test_take_without_and_check():
    points = Points.of(point(i) for i in range(4))
    assert points.without([1, 2]).seq == [0, 3]
    assert points.take([3, 0]).seq == [3, 0]
    points.check(1)
    with pytest.raises(ValueError, match="trajectory 0, not in the batch's table of 0"):
        points.check(0)
    points.flags.pop()
    with pytest.raises(ValueError, match="differ in length"):
        points.check()
    with pytest.raises(IndexError):
        points[9]


def test_points_share_the_lists_they_wrap():
    class Columns:  # what componentize-py hands over: an object with one list per field
        pass

    source = Columns()
    for name, value in Points.of([point(0)]).columns().items():
        setattr(source, name, value)
    wrapped = Points.from_columns(source)
    wrapped[0].flags = 8
    assert source.flags == [8]


def test_output_rejecting_drops_the_rejected_points():
    points = Points.of(point(i) for i in range(3))
    out = Output.rejecting(points, [Rejection(1, "why")])
    assert out.points.seq == [0, 2] and out.rejected == [Rejection(1, "why")]


def test_lines_split_the_blob_at_the_ends():
    lines = Lines.of(["a,b", b"\xff", ""])
    assert [(l.index, l.seq, l.data) for l in lines] == [(0, 0, b"a,b"), (1, 1, b"\xff"), (2, 2, b"")]
    assert list(lines)[1].text == "\ufffd"


def test_flags():
    assert (flags.IMPLAUSIBLE_SPEED, flags.ZONE_ENTER, flags.ZONE_EXIT, flags.ALTITUDE_MISSING) == (1, 2, 4, 8)
    assert flags.user(31) == 1 << 31 and flags.user(16) & flags.USER
    with pytest.raises(ValueError):
        flags.user(15)
    assert Point(0, 0, 0, 0.0, 0.0).flags == 0
