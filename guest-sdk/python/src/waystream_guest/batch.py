"""What ``process`` receives and returns: a batch, raw lines, rejections and the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Union

from .points import NO_ZONES, Points


@dataclass
class Trajectory:
    """An entry of the batch's ``trajectories`` table: who the points belong to."""

    user: str
    id: str


@dataclass
class Line:
    """One raw input line (a PLT point line before ``parse-plt``)."""

    index: int
    trajectory: int
    seq: int
    data: bytes

    @property
    def text(self) -> str:
        """The line as text (undecodable bytes replaced)."""
        return self.data.decode("utf-8", errors="replace")


class Lines:
    """Raw lines as the contract moves them (``raw-lines``): every line's bytes back to
    back in ``data``, and per-line columns ``ends`` (exclusive end offsets), ``trajectory``
    and ``seq``. Iterating yields :class:`Line` values."""

    __slots__ = ("data", "ends", "trajectory", "seq")

    def __init__(self, data: bytes = b"", ends=None, trajectory=None, seq=None):
        self.data = data
        self.ends = ends if ends is not None else []
        self.trajectory = trajectory if trajectory is not None else []
        self.seq = seq if seq is not None else []

    @classmethod
    def of(cls, lines: Iterable[Union[str, bytes]], trajectory: int = 0) -> "Lines":
        """Lines of one trajectory, numbered from ``seq`` 0."""
        raw = cls()
        data = bytearray()
        for seq, line in enumerate(lines):
            data += line.encode() if isinstance(line, str) else line
            raw.ends.append(len(data))
            raw.trajectory.append(trajectory)
            raw.seq.append(seq)
        raw.data = bytes(data)
        return raw

    def __len__(self) -> int:
        return len(self.ends)

    def __iter__(self) -> Iterator[Line]:
        start = 0
        for i, end in enumerate(self.ends):
            yield Line(i, self.trajectory[i], self.seq[i], self.data[start:end])
            start = end


@dataclass
class Batch:
    """The unit of work: one ``process`` call per batch."""

    trajectories: List[Trajectory]
    zone_sets: List[List[str]]
    records: Union[Points, Lines]

    @property
    def points(self) -> Points:
        """The batch's points; ``TypeError`` when it holds raw lines."""
        if not isinstance(self.records, Points):
            raise TypeError("this transform needs points; the batch holds raw lines (put it after parse-plt)")
        return self.records

    @property
    def lines(self) -> Lines:
        """The batch's raw lines; ``TypeError`` when it holds points."""
        if not isinstance(self.records, Lines):
            raise TypeError("this transform needs raw lines; the batch holds points")
        return self.records

    def zones(self, zone_set: int) -> List[str]:
        """The zone names of a point's ``zones`` index (``[]`` for ``NO_ZONES``)."""
        return [] if zone_set == NO_ZONES else self.zone_sets[zone_set]


@dataclass
class Rejection:
    """One input record refused, and why: it goes to the dead-letter sink alone."""

    index: int
    reason: str


@dataclass
class Output:
    """What ``process`` returns. Every input record is either one of ``points`` (in input
    order) or listed in ``rejected``. ``zone_sets``: a replacement zone table, or ``None``
    to keep the input's. Returning a bare :class:`Points` means ``Output(points)``."""

    points: Points
    rejected: List[Rejection] = field(default_factory=list)
    zone_sets: Optional[List[List[str]]] = None

    @classmethod
    def rejecting(cls, points: Points, rejected: Iterable[Rejection], zone_sets=None) -> "Output":
        """The output of ``points`` less the rejected ones (by input index)."""
        rejected = list(rejected)
        return cls(points.without(r.index for r in rejected), rejected, zone_sets)
