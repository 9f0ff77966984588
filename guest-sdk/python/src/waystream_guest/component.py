"""The component glue: the contract's exports, routed to one long-lived transform instance.

Imported only inside a component (it needs the bindings componentize-py generates, the
``wit_world`` package); ``python -m waystream_guest build`` writes the entry module that
uses it. By hand, an entry module is::

    import app                                   # your module
    from waystream_guest import component
    Transform = component.export(component.find_transform(app))

componentize-py instantiates the exported ``Transform`` class anew for every call, so
nothing may live on that object: the user's instance lives in this module's
:class:`~waystream_guest.runtime.Runtime`, which outlives the calls.
"""

from __future__ import annotations

import sys
import types as _pytypes
from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log as wit_log
from wit_world.imports import types as wit

from . import hostlog as log
from .batch import Batch, Lines, Output
from .points import Points
from .runtime import GuestError, Runtime
from .transform import Transform as _UserTransform

_runtime: Optional[Runtime] = None
_connected = False


class _LogWriter:
    """``sys.stdout``/``stderr`` inside the component: whole lines go to the host's log
    (the host gives guests no stdout; a ``print`` would vanish)."""

    def __init__(self, level: log.Level):
        self.level = level
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log.log(self.level, line)
        return len(text)

    def flush(self) -> None:
        pass


# Module level runs at build time (componentize-py pre-initialises the component), where
# calling the log import fails the build: queue until the host's first call.
log.defer()
sys.stdout = _LogWriter(log.Level.INFO)
sys.stderr = _LogWriter(log.Level.WARN)


def _enter() -> Runtime:
    """Called first in every export: connects logging to the host once."""
    global _connected
    if not _connected:
        _connected = True
        log.connect(lambda level, text: wit_log.log(wit_log.Level(int(level)), text))
    if _runtime is None:
        raise Err("no transform exported: the entry module must call component.export")
    return _runtime


def find_transform(module: _pytypes.ModuleType, name: Optional[str] = None) -> type:
    """The transform class of ``module``: the one named ``name``, or else the only
    subclass of :class:`waystream_guest.Transform` defined in it."""
    if name is not None:
        found = getattr(module, name, None)
        if not isinstance(found, type):
            raise LookupError(f"{module.__name__} has no class {name}")
        return found
    candidates = [
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, _UserTransform)
        and v is not _UserTransform
        and v.__module__ == module.__name__
    ]
    if len(candidates) != 1:
        names = ", ".join(c.__name__ for c in candidates) or "none"
        raise LookupError(
            f"{module.__name__} must define exactly one subclass of waystream_guest.Transform "
            f"(found: {names}); name it with --class"
        )
    return candidates[0]


def export(cls: type) -> type:
    """Makes ``cls`` the component's transform; returns the class componentize-py
    exports (assign it to ``Transform`` in the entry module)."""
    global _runtime
    _runtime = Runtime(cls)
    return Transform


def _batch(b: wit.Batch) -> Batch:
    records = b.records
    if isinstance(records, wit.Records_Points):
        sdk_records = Points.from_columns(records.value)
    else:
        raw = records.value
        sdk_records = Lines(raw.data, raw.ends, raw.trajectory, raw.seq)
    # Trajectory entries are used as they come: they have .user and .id like ours.
    return Batch(b.trajectories, b.zone_sets, sdk_records)


def _output(o: Output) -> wit.Output:
    return wit.Output(
        points=wit.PointColumns(**o.points.columns()),
        zone_sets=o.zone_sets,
        rejected=[wit.Rejection(r.index, r.reason) for r in o.rejected],
    )


class Transform(exports.Transform):
    """What componentize-py exports (a new object per call; it holds nothing)."""

    def init(self, config: str) -> None:
        try:
            _enter().init(config)
        except GuestError as e:
            raise Err(str(e)) from None

    def process(self, batch: wit.Batch) -> wit.Output:
        try:
            return _output(_enter().process(_batch(batch)))
        except GuestError as e:
            raise Err(str(e)) from None

    def snapshot(self) -> bytes:
        try:
            return _enter().snapshot()
        except Err:
            return b""

    def restore(self, state: bytes) -> None:
        try:
            _enter().restore(state)
        except GuestError as e:
            raise Err(str(e)) from None
