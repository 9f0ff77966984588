"""The component glue, run natively over componentize-py's real bindings: what the host
sees when it calls the exports (a new exported object per call, as componentize-py does)."""

import sys

import pytest

from waystream_guest import Level, Transform, info, state
from waystream_guest.testing import point, points_batch


class Keeper(Transform):
    def init(self, config):
        self.threshold = config["threshold"]
        self.calls = 0
        print("printed in init")

    def process(self, batch):
        self.calls += 1
        points = batch.points
        for p in points:
            if p.seq >= self.threshold:
                p.flags |= 1 << 16
            if p.seq == 99:
                raise ValueError("bad point")
        return points

    def snapshot(self):
        if self.calls > 1:
            raise RuntimeError("cannot save")
        return state.save(1, self.calls)


def wit_batch(component, seqs):
    wit = component.wit
    cols = points_batch([point(s) for s in seqs]).points.columns()
    return wit.Batch([wit.Trajectory("u", "t")], [], wit.Records_Points(wit.PointColumns(**cols)))


def test_state_set_in_init_reaches_process_through_per_call_objects(component, monkeypatch):
    # pytest swaps sys.stdout between phases; put back the component's writer.
    monkeypatch.setattr(sys, "stdout", component._LogWriter(Level.INFO))
    info("logged at import time")  # queued: the host cannot be called during the build
    export = component.export(Keeper)
    assert component.host_log == []
    export().init('{"threshold": 2}')  # a new object per call, as componentize-py does
    out = export().process(wit_batch(component, [0, 1, 2, 3]))
    assert isinstance(out, component.wit.Output)
    assert out.points.flags == [0, 0, 1 << 16, 1 << 16]
    assert component.host_log == [("INFO", "logged at import time"), ("INFO", "printed in init")]
    assert export().snapshot() == state.save(1, 1)


def test_errors_become_err_not_traps(component):
    from componentize_py_types import Err

    export = component.export(Keeper)
    with pytest.raises(Err) as refused:
        export().init("{}")
    assert refused.value.value.startswith("KeyError: 'threshold'\nTraceback")
    with pytest.raises(Err, match="called before a successful init"):
        export().process(wit_batch(component, [0]))
    export().init('{"threshold": 0}')
    with pytest.raises(Err) as failed:
        export().process(wit_batch(component, [99]))
    assert failed.value.value.startswith("ValueError: bad point\nTraceback")
    export().process(wit_batch(component, [1]))
    assert export().snapshot() == b""  # snapshot cannot fail: logged, no state handed over
    assert component.host_log[-1][0] == "ERROR" and "RuntimeError: cannot save" in component.host_log[-1][1]
