"""Native tests of {{name}} (pytest, no Wasm)."""

from waystream_guest.testing import Harness, point, points_batch

from transform import Passthrough


def test_points_pass_through_unchanged():
    batch = points_batch([point(0), point(1, speed_mps=1.5)])
    out = Harness(Passthrough, {"example": 1}).process(batch)
    assert out.points == batch.points and out.rejected == []
