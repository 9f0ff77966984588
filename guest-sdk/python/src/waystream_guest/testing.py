"""Run a transform natively (CPython, pytest), no Wasm: batch builders and a harness.

::

    from waystream_guest.testing import Harness, point, points_batch

    def test_slow_points_are_stops():
        h = Harness(Stops, {"max_speed_mps": 2.0})
        out = h.process(points_batch([point(0, speed_mps=1.0), point(1, speed_mps=3.0)]))
        assert [p.flags for p in out.points] == [STOP, 0]

The harness goes through the same routing as the component (one instance, ``init`` with
the config as JSON, exceptions turned into the contract's error text) and checks every
output as the host does (accounting, point values, reserved flags), plus the value types
the Wasm boundary needs, so a test fails where the host would dead-letter.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from . import hostlog as _log
from .batch import Batch, Lines, Output, Trajectory
from .flags import RESERVED
from .points import FIELDS, INT_FIELDS, NO_ZONES, Point, Points
from .runtime import GuestError, Runtime, check_accounting

#: 2008-10-23T02:53:00Z, the default time of :func:`point` (seq ``n`` is ``n`` seconds later).
DEFAULT_TS_MS = 1_224_730_380_000
# The host's default [limits] min_year/max_year, as epoch milliseconds.
_MIN_TS_MS = 0  # 1970-01-01
_MAX_TS_MS = 4_133_980_799_999  # 2100-12-31T23:59:59.999Z
_U32 = 0xFFFFFFFF


def trajectory(user: str = "test", id: str = "t") -> Trajectory:
    """A trajectory table entry."""
    return Trajectory(user, id)


def point(
    seq: int = 0,
    *,
    trajectory: int = 0,
    ts_ms: Optional[int] = None,
    lat: float = 39.9,
    lon: float = 116.4,
    **derived: Any,
) -> Point:
    """A point of ``trajectory`` (an index into the batch's table), one second per
    ``seq`` after :data:`DEFAULT_TS_MS` unless ``ts_ms`` is given; ``derived`` sets the
    other fields (``speed_mps=1.5``, ``flags=…``)."""
    if ts_ms is None:
        ts_ms = DEFAULT_TS_MS + 1000 * seq
    return Point(trajectory, seq, ts_ms, lat, lon, **derived)


def points_batch(
    points: Iterable[Point],
    trajectories: Optional[Sequence[Trajectory]] = None,
    zone_sets: Optional[List[List[str]]] = None,
) -> Batch:
    """A batch of ``points``. Without ``trajectories`` the table gets one entry per index
    used: ``test/t``, then ``test/t1``, ``test/t2``…"""
    columns = Points.of(points)
    if trajectories is None:
        count = max(columns.trajectory, default=0) + 1
        trajectories = [trajectory("test", "t" if i == 0 else f"t{i}") for i in range(count)]
    return Batch(list(trajectories), list(zone_sets or []), columns)


def lines_batch(
    lines: Iterable[Union[str, bytes]], trajectories: Optional[Sequence[Trajectory]] = None
) -> Batch:
    """A batch of raw lines of trajectory 0, numbered from ``seq`` 0."""
    return Batch(list(trajectories or [trajectory()]), [], Lines.of(lines))


class Harness:
    """One transform instance, called as the host would.

    ``process``/``restore`` raise the transform's own exception (pytest shows it as
    usual); :meth:`process_error` returns the error text the host would get instead.
    ``logs`` collects ``(level, message)`` of every line logged during the calls.
    """

    def __init__(self, cls: type, config: Union[dict, str, None] = None):
        self.cls = cls
        self.config = config
        self.logs: List[Tuple[_log.Level, str]] = []
        self._runtime = Runtime(cls)
        text = config if isinstance(config, str) else json.dumps(config or {})
        self._call(self._runtime.init, text)

    @property
    def instance(self):
        """The transform object itself."""
        return self._runtime.instance

    def process(self, batch: Batch) -> Output:
        """``process`` on ``batch``, checked as the host checks it."""
        output = self._call(self._runtime.process, batch)
        check_output(batch, output)
        return output

    def process_error(self, batch: Batch) -> str:
        """The error text of a ``process`` that must fail (``AssertionError`` if it does not)."""
        try:
            self._call(self._runtime.process, batch, unwrap=False)
        except GuestError as e:
            return str(e)
        raise AssertionError("process succeeded; expected an error")

    def snapshot(self) -> bytes:
        return self._call(self._runtime.snapshot)

    def restore(self, state: bytes) -> None:
        self._call(self._runtime.restore, state)

    def swap(self, cls: Optional[type] = None, config: Union[dict, str, None] = None) -> "Harness":
        """A hot swap: a new instance (of ``cls``, default the same class and config),
        initialised, restored from this one's snapshot."""
        new = Harness(cls or self.cls, self.config if config is None else config)
        new.restore(self.snapshot())
        return new

    def _call(self, fn, *args, unwrap: bool = True):
        previous = _log._sink
        _log._sink = lambda level, text: self.logs.append((level, text))
        try:
            return fn(*args)
        except GuestError as e:
            # Natively the user's exception is more use than its text.
            if unwrap and e.__cause__ is not None:
                raise e.__cause__ from None
            raise
        finally:
            _log._sink = previous


def init_error(cls: type, config: Union[dict, str, None] = None) -> str:
    """The error text of an ``init`` that must fail (``AssertionError`` if it does not)."""
    runtime = Runtime(cls)
    try:
        runtime.init(config if isinstance(config, str) else json.dumps(config or {}))
    except GuestError as e:
        return str(e)
    raise AssertionError("init succeeded; expected an error")


def run(cls: type, batches: Iterable[Batch], config: Union[dict, str, None] = None) -> List[Output]:
    """init → process every batch → snapshot → restore into a fresh instance (a hot swap
    to the same version), which must accept the snapshot. Returns the outputs."""
    harness = Harness(cls, config)
    outputs = [harness.process(b) for b in batches]
    harness.swap()
    return outputs


def check_output(batch: Batch, output: Output) -> None:
    """Raises ``AssertionError`` for what the host would refuse in ``output``: broken
    accounting (points in input order, same trajectory and seq), invalid point values,
    reserved flag bits, and values of the wrong type for the Wasm boundary."""
    try:
        check_accounting(batch, output)
    except Exception as e:
        raise AssertionError(str(e)) from None
    out = output.points
    for name in FIELDS:
        column = getattr(out, name)
        for i, v in enumerate(column):
            if name in INT_FIELDS:
                ok = isinstance(v, int) and not isinstance(v, bool)
                ok = ok and (-(2**63) <= v < 2**63 if name == "ts_ms" else 0 <= v <= _U32)
            else:
                # componentize-py takes an int for an f64 (3 becomes 3.0), not a bool.
                ok = isinstance(v, (float, int)) and not isinstance(v, bool)
            if not ok:
                kind = "an integer" if name in INT_FIELDS else "a number"
                raise AssertionError(f"point {i}: {name} is {v!r}, not {kind} the contract can carry")
    if isinstance(batch.records, Points):
        rejected = {r.index for r in output.rejected}
        kept = [i for i in range(len(batch.records)) if i not in rejected]
        src = batch.records
        for j, i in enumerate(kept):
            if (out.trajectory[j], out.seq[j]) != (src.trajectory[i], src.seq[i]):
                raise AssertionError(
                    f"broken accounting: output point {j} is trajectory {out.trajectory[j]} seq "
                    f"{out.seq[j]}, but input record {i} is trajectory {src.trajectory[i]} seq {src.seq[i]}"
                )
    table = output.zone_sets if output.zone_sets is not None else batch.zone_sets
    for i in range(len(out)):
        why = _invalid(out, i)
        if why:
            raise AssertionError(f"point {i}: the host would refuse it: {why}")
        if out.zones[i] != NO_ZONES and out.zones[i] >= len(table):
            raise AssertionError(f"point {i}: zones {out.zones[i]} is not in the zone table of {len(table)}")


def _invalid(p: Points, i: int) -> Optional[str]:
    if not abs(p.lat[i]) <= 90:
        return f"lat is {p.lat[i]} (must be a number within ±90)"
    if not abs(p.lon[i]) <= 180:
        return f"lon is {p.lon[i]} (must be a number within ±180)"
    if not _MIN_TS_MS <= p.ts_ms[i] <= _MAX_TS_MS:
        return f"ts_ms {p.ts_ms[i]} is outside the years 1970–2100"
    for name in ("alt_m", "dist_m", "speed_mps", "heading_deg"):
        if math.isinf(getattr(p, name)[i]):
            return f"{name} is infinite (NaN means absent)"
    if p.flags[i] & RESERVED:
        return f"flags set reserved bits 0x{p.flags[i] & RESERVED:04x} (user bits are 16–31)"
    return None
