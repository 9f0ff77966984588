"""The base class of a transform."""

from __future__ import annotations

from typing import Any, Dict, Union

from .batch import Batch, Output
from .errors import TransformError
from .points import Points


class Transform:
    """Subclass this and override :meth:`process` (and the others as needed).

    The SDK creates **one instance per module instance**, calls :meth:`init` once with the
    module's configuration, then :meth:`process` for every batch, so state kept on ``self``
    lasts from batch to batch (componentize-py itself would create a new exported object
    for every call; the SDK keeps yours at module level and routes each call to it). The
    class is constructed without arguments: put defaults in ``__init__`` or ``init``.

    An exception raised by ``init``, ``process`` or ``restore`` becomes the contract's
    ``err`` with its type, message and traceback: ``init`` refuses the module, ``process``
    fails the batch (every record to the dead letter, with that cause), ``restore`` makes
    the host start this version fresh. Raise :class:`~waystream_guest.TransformError` for a
    message without type and traceback.
    """

    def init(self, config: Dict[str, Any]) -> None:
        """Reads the module's configuration (the pipeline's ``config`` table as a dict;
        ``{}`` when there is none)."""

    def process(self, batch: Batch) -> Union[Output, Points]:
        """Transforms one batch: return an :class:`Output` (or just the :class:`Points`,
        meaning no rejections and the same zone table). Every input record must come out
        as one point, in input order, or be rejected."""
        raise NotImplementedError(f"{type(self).__name__} does not implement process")

    def snapshot(self) -> bytes:
        """The state for the next version of the module (see :mod:`waystream_guest.state`);
        ``b""`` when there is none."""
        return b""

    def restore(self, state: bytes) -> None:
        """Takes over the state of a previous version. The default accepts only no state."""
        if state:
            raise TransformError(f"{type(self).__name__} keeps no state; starting fresh")
