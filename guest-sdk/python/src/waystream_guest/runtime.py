"""Routes the contract's calls to one long-lived transform instance.

Shared by the component glue (:mod:`waystream_guest.component`) and the native harness
(:mod:`waystream_guest.testing`), so tests run the same routing, error conversion and
output checks as the component.
"""

from __future__ import annotations

import json
from typing import Optional

from . import hostlog as log
from .batch import Batch, Output
from .errors import TransformError, describe
from .points import Points

# What the SDK turns into ``err`` rather than let trap the instance. SystemExit too: a
# transform calling sys.exit() should fail its call, not the host's instance.
CAUGHT = (Exception, SystemExit)


class GuestError(Exception):
    """A call that ends in the contract's ``err``: ``str(e)`` is the text the host gets,
    ``e.__cause__`` the exception that caused it (if any)."""


class Runtime:
    """One transform class and its instance, created by :meth:`init`."""

    def __init__(self, cls: type):
        self.cls = cls
        self.instance = None

    def init(self, config: str) -> None:
        try:
            parsed = json.loads(config) if config.strip() else {}
            if not isinstance(parsed, dict):
                raise TransformError(f"the config must be a JSON object, not {config[:80]!r}")
            instance = self.cls()
            instance.init(parsed)
        except CAUGHT as e:
            raise GuestError(describe(e)) from e
        self.instance = instance

    def process(self, batch: Batch) -> Output:
        instance = self._instance()
        try:
            output = normalise(instance.process(batch))
            check_accounting(batch, output)
        except CAUGHT as e:
            raise GuestError(describe(e)) from e
        return output

    def snapshot(self) -> bytes:
        if self.instance is None:
            return b""
        try:
            return bytes(self.instance.snapshot() or b"")
        except CAUGHT as e:
            # The contract's snapshot cannot fail: say why, hand over no state.
            log.error(f"snapshot failed, handing over no state: {describe(e)}")
            return b""

    def restore(self, state: bytes) -> None:
        instance = self._instance()
        try:
            instance.restore(bytes(state))
        except CAUGHT as e:
            raise GuestError(describe(e)) from e

    def _instance(self):
        if self.instance is None:
            raise GuestError(f"{self.cls.__name__} was called before a successful init")
        return self.instance


def normalise(result) -> Output:
    """``process``'s return value as an :class:`Output`."""
    if isinstance(result, Output):
        return result
    if isinstance(result, Points):
        return Output(result)
    raise TransformError(
        f"process returned {type(result).__name__}; return an Output or the batch's Points"
    )


def check_accounting(batch: Batch, output: Output, trajectories: Optional[int] = None) -> None:
    """The cheap half of the host's checks, with clearer messages: every column as long as
    the others and every record accounted for once. (The harness adds the rest.)"""
    points = output.points
    if not isinstance(points, Points):
        raise TransformError(f"Output.points is {type(points).__name__}, not Points")
    points.check(len(batch.trajectories) if trajectories is None else trajectories)
    n = len(batch.records)
    if len(points) + len(output.rejected) != n:
        raise TransformError(
            f"broken accounting: process returned {len(points)} points and "
            f"{len(output.rejected)} rejections for {n} records"
        )
    seen = set()
    for r in output.rejected:
        if not 0 <= r.index < n or r.index in seen:
            raise TransformError(f"rejection index {r.index} is out of range or repeated")
        seen.add(r.index)
