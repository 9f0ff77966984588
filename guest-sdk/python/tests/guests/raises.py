"""A hostile guest for the host's tests: raises in process for a trajectory whose id starts
with "bad", so the dead letter's cause must carry "ValueError: bad point" and a traceback
line. Built by guest-sdk/check-polyglot.sh into $WAYSTREAM_TARGET/modules/python-raises.wasm."""

from waystream_guest import Transform


class Raises(Transform):
    def process(self, batch):
        for t in batch.points.trajectory:
            if batch.trajectories[t].id.startswith("bad"):
                check_point(t)
        return batch.points


def check_point(t):
    raise ValueError("bad point")
