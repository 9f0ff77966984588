import pytest

from waystream_guest import (
    Level, Output, Points, Rejection, Transform, TransformError, flags, info, state, warn,
)
from waystream_guest.testing import (
    Harness, init_error, lines_batch, point, points_batch, run, trajectory,
)


class Counter(Transform):
    """Keeps its config and a count on self: both must survive from init to process."""

    def init(self, config):
        self.step = config.get("step", 1)
        self.count = 0
        info(f"step {self.step}")

    def process(self, batch):
        points = batch.points
        for p in points:
            if batch.trajectories[p.trajectory].id.startswith("bad"):
                raise ValueError("bad point")
        self.count += self.step * len(points)
        return points

    def snapshot(self):
        return state.save(1, self.count)

    def restore(self, data):
        saved = state.load("counter", 1, data)
        if saved is not None:
            self.count = saved


def test_the_instance_and_its_config_live_from_init_to_every_process():
    h = Harness(Counter, {"step": 10})
    h.process(points_batch([point(0), point(1)]))
    h.process(points_batch([point(2)]))
    assert h.instance.count == 30
    assert h.logs == [(Level.INFO, "step 10")]


def test_a_hot_swap_hands_the_state_over():
    h = Harness(Counter)
    h.process(points_batch([point(0)]))
    assert h.swap().instance.count == 1
    outputs = run(Counter, [points_batch([point(0)])])
    assert len(outputs[0].points) == 1


def test_process_errors_carry_type_message_and_traceback():
    h = Harness(Counter)
    bad = points_batch([point(0)], [trajectory("u", "bad1")])
    with pytest.raises(ValueError, match="bad point"):
        h.process(bad)
    text = h.process_error(bad)
    assert text.startswith("ValueError: bad point\nTraceback (most recent call last):\n")
    assert "in process" in text and 'raise ValueError("bad point")' in text
    assert "waystream_guest" not in text  # the SDK's own frames are left out


def test_init_errors_refuse_the_module():
    class Picky(Transform):
        def init(self, config):
            raise TransformError("max_speed_mps must be positive")

    assert init_error(Picky) == "max_speed_mps must be positive"
    assert init_error(Counter, "[1]").startswith("the config must be a JSON object")
    with pytest.raises(AssertionError):
        init_error(Counter)


def test_restore_refuses_another_snapshot_version():
    h = Harness(Counter)
    with pytest.raises(TransformError, match="counter snapshot version 2 is not the version 1"):
        h.restore(state.save(2, 5))
    with pytest.raises(TransformError, match="keeps no state"):
        Harness(Transform).restore(b"x")


def test_the_harness_refuses_what_the_host_would():
    class Bad(Transform):
        def init(self, config):
            self.mode = config["mode"]

        def process(self, batch):
            points = batch.points
            if self.mode == "reserved":
                points.flags[0] |= 1 << 4
            elif self.mode == "lost":
                return points.without([0])
            elif self.mode == "float-flags":
                points.flags[0] = 1.5
            elif self.mode == "lat":
                points.lat[0] = 91.0
            elif self.mode == "reorder":
                return points.take([1, 0])
            elif self.mode == "none":
                return None
            return points

    batch = lambda: points_batch([point(0), point(1)])
    for mode, message in [
        ("reserved", "reserved bits 0x0010"),
        ("float-flags", "flags is 1.5, not an integer"),
        ("lat", "lat is 91.0"),
        ("reorder", "output point 0 is trajectory 0 seq 1"),
    ]:
        with pytest.raises(AssertionError, match=message):
            Harness(Bad, {"mode": mode}).process(batch())
    assert "broken accounting: process returned 1 points and 0 rejections for 2" in Harness(
        Bad, {"mode": "lost"}
    ).process_error(batch())
    assert "process returned NoneType" in Harness(Bad, {"mode": "none"}).process_error(batch())


def test_rejections_and_lines():
    class Parse(Transform):
        def process(self, batch):
            points, rejected = Points(), []
            for line in batch.lines:
                try:
                    lat, lon = map(float, line.text.split(","))
                except ValueError:
                    rejected.append(Rejection(line.index, f"not lat,lon: {line.text!r}"))
                    continue
                points.append(point(line.seq, trajectory=line.trajectory, lat=lat, lon=lon))
            warn(f"{len(rejected)} rejected")
            return Output(points, rejected)

    h = Harness(Parse)
    out = h.process(lines_batch(["39.9,116.4", "nope", "40,116"]))
    assert out.points.lat == [39.9, 40.0] and out.rejected == [Rejection(1, "not lat,lon: 'nope'")]
    assert h.logs[-1][1] == "1 rejected"
    assert "needs raw lines" in Harness(Parse).process_error(points_batch([point(0)]))


def test_flags_constants_match_the_contract():
    assert flags.RESERVED == 0xFFF0 and flags.USER == 0xFFFF0000
