"""A waystream transform in Python: flags points slower than a threshold as stops.

Configured from the pipeline (``config = { max_speed_mps = 5.0 }``, default 0.5 m/s); the
threshold lives on the instance, which the SDK keeps for the module's lifetime. A point
whose speed is absent (the first of a trajectory, or a repeated timestamp) is not a stop.
It counts the points it has seen and hands the count over on a hot swap.
"""

from waystream_guest import Transform, TransformError, flags, info, state

#: User flag bit 16: the document shows it as ``user_16``.
STOP = flags.user(16)


class Stops(Transform):
    def init(self, config):
        self.max_speed = config.get("max_speed_mps", 0.5)
        if isinstance(self.max_speed, bool) or not isinstance(self.max_speed, (int, float)) or not self.max_speed > 0:
            raise TransformError(f"max_speed_mps must be a positive number, not {self.max_speed!r}")
        self.seen = 0
        info(f"stops: max speed {self.max_speed} m/s")

    def process(self, batch):
        points = batch.points
        # The columns directly: the hot loop of a transform that touches every point.
        speed, flag = points.speed_mps, points.flags
        for i in range(len(flag)):
            # NaN (no speed) compares false, so such points stay unflagged.
            if speed[i] < self.max_speed:
                flag[i] |= STOP
        self.seen += len(points)
        return points

    def snapshot(self):
        return state.save(1, {"seen": self.seen})

    def restore(self, data):
        saved = state.load("stops", 1, data)
        if saved is None:
            return
        # JSON has no types to check: another transform's version-1 snapshot loads too (a
        # different module swapped into this slot), so check the shape before taking it.
        seen = saved.get("seen") if isinstance(saved, dict) else None
        if isinstance(seen, bool) or not isinstance(seen, int):
            raise TransformError("not a stops snapshot: no count of points seen")
        self.seen = seen
