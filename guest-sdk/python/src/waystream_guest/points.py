"""Points as the contract moves them: columns, with a row view for code that thinks in points.

The contract's ``point-columns`` holds one list per field: point ``i`` is element ``i`` of
every list. Lists of plain numbers cross the Wasm boundary as one block copy, so the SDK
hands your transform the lists it received and sends back the ones you return, without
converting anything. An absent value is ``NaN`` (floats) or :data:`NO_ZONES` (``zones``).

Two ways to work with them:

* the columns, fastest: ``points.speed_mps[i]``, ``points.flags[i] |= bit``;
* rows: ``for p in points:`` yields a :class:`Row`, a live view whose attributes read and
  write the columns in place, with absent values as ``None``. :class:`Point` is a plain
  value (a dataclass) for building new points: ``points.append(Point(...))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields as dataclass_fields
from typing import Iterable, Iterator, List, Optional

#: ``zones`` value meaning "in no zone, or zones not computed" (``u32::MAX``).
NO_ZONES = 0xFFFFFFFF

#: The columns, in the contract's order.
FIELDS = (
    "trajectory",
    "seq",
    "ts_ms",
    "lat",
    "lon",
    "alt_m",
    "zones",
    "dist_m",
    "speed_mps",
    "heading_deg",
    "flags",
)
#: Float columns where NaN means absent.
OPTIONAL_FLOATS = ("alt_m", "dist_m", "speed_mps", "heading_deg")
#: Integer columns (everything else is a float).
INT_FIELDS = ("trajectory", "seq", "ts_ms", "zones", "flags")

_NAN = math.nan


@dataclass
class Point:
    """One point as a plain value; absent values are ``None``."""

    trajectory: int
    seq: int
    ts_ms: int
    lat: float
    lon: float
    alt_m: Optional[float] = None
    zones: Optional[int] = None
    dist_m: Optional[float] = None
    speed_mps: Optional[float] = None
    heading_deg: Optional[float] = None
    flags: int = 0


def _to_column(name: str, value):
    """A row value as its column stores it (``None`` becomes the absent marker)."""
    if value is None:
        if name == "zones":
            return NO_ZONES
        if name in OPTIONAL_FLOATS:
            return _NAN
        raise ValueError(f"{name} cannot be absent")
    return value


def _from_column(name: str, value):
    """A column value as a row shows it (absent markers become ``None``)."""
    if name == "zones":
        return None if value == NO_ZONES else value
    if name in OPTIONAL_FLOATS and value != value:  # NaN is the only value unequal to itself
        return None
    return value


class Row:
    """A live view of point ``index`` of a :class:`Points`: reading an attribute reads the
    column, assigning one writes it, so ``p.flags |= bit`` changes the batch in place.

    Rows are cheap but not free (a Python object and a property call per access); a
    transform that touches every point of big batches is faster on the columns.
    """

    __slots__ = ("_points", "index")

    def __init__(self, points: "Points", index: int):
        self._points = points
        self.index = index

    def as_point(self) -> Point:
        """A copy of this point as a plain :class:`Point`."""
        return Point(*(getattr(self, name) for name in FIELDS))

    def __repr__(self) -> str:
        return f"Row({self.index}, {self.as_point()!r})"


def _row_property(name: str) -> property:
    def get(row: Row):
        return _from_column(name, getattr(row._points, name)[row.index])

    def set_(row: Row, value) -> None:
        getattr(row._points, name)[row.index] = _to_column(name, value)

    return property(get, set_, doc=f"The point's {name} (``None`` when absent).")


# One property per field, generated so the list of fields is written once.
for _name in FIELDS:
    setattr(Row, _name, _row_property(_name))
del _name


class Points:
    """A batch's points as columns (the contract's ``point-columns``).

    Every attribute in :data:`FIELDS` is a list, all of the same length. Iterating yields
    :class:`Row` views; indexing too (``points[3].lat``).
    """

    __slots__ = FIELDS

    def __init__(self, **columns: List):
        unknown = set(columns) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown point columns: {sorted(unknown)}")
        for name in FIELDS:
            setattr(self, name, columns.get(name, []))

    @classmethod
    def of(cls, points: Iterable[Point]) -> "Points":
        """Columns holding ``points``, in order."""
        columns = cls()
        for p in points:
            columns.append(p)
        return columns

    @classmethod
    def from_columns(cls, source) -> "Points":
        """Wraps an object with one attribute per column (such as the bindings' own
        ``PointColumns``), sharing its lists rather than copying them."""
        return cls(**{name: getattr(source, name) for name in FIELDS})

    def columns(self) -> dict:
        """The columns as a dict of lists (shared, not copied)."""
        return {name: getattr(self, name) for name in FIELDS}

    def __len__(self) -> int:
        return len(self.seq)

    def __iter__(self) -> Iterator[Row]:
        for i in range(len(self.seq)):
            yield Row(self, i)

    def __getitem__(self, index: int) -> Row:
        n = len(self.seq)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"point {index} of {n}")
        return Row(self, index)

    def __eq__(self, other) -> bool:
        # Compare as points so NaN (absent) equals NaN.
        return isinstance(other, Points) and [r.as_point() for r in self] == [
            r.as_point() for r in other
        ]

    def __repr__(self) -> str:
        return f"Points({[r.as_point() for r in self]!r})"

    def append(self, point: Point) -> None:
        """Adds ``point`` at the end of every column."""
        for name in FIELDS:
            getattr(self, name).append(_to_column(name, getattr(point, name)))

    def take(self, indices: Iterable[int]) -> "Points":
        """New columns holding the points at ``indices``, in that order."""
        indices = list(indices)
        return Points(
            **{name: [getattr(self, name)[i] for i in indices] for name in FIELDS}
        )

    def without(self, indices: Iterable[int]) -> "Points":
        """New columns holding every point except those at ``indices`` (in order)."""
        drop = set(indices)
        return self.take(i for i in range(len(self)) if i not in drop)

    def check(self, trajectories: Optional[int] = None) -> None:
        """Raises ``ValueError`` unless every column has the same length and (given the
        size of the batch's trajectory table) every ``trajectory`` is an entry of it."""
        lengths = {name: len(getattr(self, name)) for name in FIELDS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"point columns differ in length: {lengths}")
        if trajectories is not None:
            for t in self.trajectory:
                if not 0 <= t < trajectories:
                    raise ValueError(
                        f"point refers to trajectory {t}, not in the batch's table of {trajectories}"
                    )


assert [f.name for f in dataclass_fields(Point)] == list(FIELDS)
