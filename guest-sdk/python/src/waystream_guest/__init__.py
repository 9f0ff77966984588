"""Write a waystream transform in Python.

A transform is a class: subclass :class:`Transform`, keep state on ``self``, return the
batch's points (changed in place) or an :class:`Output` with rejections::

    from waystream_guest import Transform, flags, info

    STOP = flags.user(16)

    class Stops(Transform):
        def init(self, config):
            self.max_speed = float(config.get("max_speed_mps", 0.5))
            info(f"max speed {self.max_speed} m/s")

        def process(self, batch):
            points = batch.points
            for p in points:
                if p.speed_mps is not None and p.speed_mps < self.max_speed:
                    p.flags |= STOP
            return points

Test it natively with :mod:`waystream_guest.testing` and pytest; build it into a
component with ``python -m waystream_guest build app.py -o app.wasm`` (componentize-py).
"""

from . import flags, state
from .batch import Batch, Line, Lines, Output, Rejection, Trajectory
from .errors import TransformError
from .hostlog import Level, debug, error, info, log, trace, warn
from .points import NO_ZONES, Point, Points, Row
from .transform import Transform

__version__ = "0.3.0"
#: The contract this SDK implements (``wit/waystream.wit`` inside the package).
CONTRACT = "waystream:transform@0.3.1"

__all__ = [
    "Batch", "CONTRACT", "Level", "Line", "Lines", "NO_ZONES", "Output", "Point", "Points",
    "Rejection", "Row", "Trajectory", "Transform", "TransformError", "debug", "error",
    "flags", "info", "log", "state", "trace", "warn",
]
