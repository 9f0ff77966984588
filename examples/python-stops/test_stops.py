"""Native tests of stops.py: CPython and pytest, no Wasm (`pytest` in this folder)."""

import pytest

from waystream_guest import state
from waystream_guest.testing import Harness, init_error, point, points_batch, run

from stops import STOP, Stops


def batch():
    # No speed (first point), 0.3, 3 and 11 m/s.
    return points_batch([point(0), point(1, speed_mps=0.3), point(2, speed_mps=3.0), point(3, speed_mps=11.0)])


def test_the_configured_threshold_is_kept_from_init_to_process():
    assert [p.flags for p in Harness(Stops).process(batch()).points] == [0, STOP, 0, 0]
    h = Harness(Stops, {"max_speed_mps": 5.0})
    h.process(batch())  # a second batch still sees the threshold
    assert [p.flags for p in h.process(batch()).points] == [0, STOP, STOP, 0]


def test_other_flags_are_kept():
    out = Harness(Stops).process(points_batch([point(0, speed_mps=0.1, flags=1)]))
    assert out.points.flags == [1 | STOP]


def test_a_bad_threshold_refuses_the_module():
    assert init_error(Stops, {"max_speed_mps": -1}) == "max_speed_mps must be a positive number, not -1"
    assert "not 'fast'" in init_error(Stops, {"max_speed_mps": "fast"})


def test_the_count_survives_a_hot_swap():
    h = Harness(Stops)
    h.process(batch())
    assert h.snapshot() == state.save(1, {"seen": 4})
    assert h.swap().instance.seen == 4
    with pytest.raises(Exception, match="version 2"):
        h.restore(state.save(2, {}))
    # Another transform's version-1 state (say geofence's, when this module replaces it).
    with pytest.raises(Exception, match="not a stops snapshot"):
        h.restore(state.save(1, {"last": {"000/1": [0, 1]}}))
    assert len(run(Stops, [batch(), batch()])) == 2
