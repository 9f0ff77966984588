"""Versioned state for ``snapshot``/``restore``, in the same JSON layout as the Rust SDK.

A hot swap hands the old version's snapshot to the new version's ``restore``. ``save``
writes ``{"version": N, "state": …}``; ``load`` gives the state back, ``None`` for an empty
snapshot (the previous version kept none), and refuses another version, so the host starts
the new version fresh instead of misreading the old layout.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import TransformError


def save(version: int, state: Any) -> bytes:
    """``state`` (anything ``json`` can write) with its layout ``version``."""
    return json.dumps({"version": version, "state": state}, separators=(",", ":")).encode()


def load(transform: str, version: int, data: bytes) -> Any:
    """The state :func:`save` wrote with ``version``; ``None`` for no state. Raises
    :class:`TransformError` naming ``transform`` for anything else."""
    if not data:
        return None
    try:
        doc = json.loads(bytes(data))
        found = doc["version"]
    except (ValueError, TypeError, KeyError) as e:
        raise TransformError(f"not a {transform} snapshot: {e}") from None
    if found != version:
        raise TransformError(
            f"{transform} snapshot version {found} is not the version {version} this build reads"
        )
    return doc.get("state")
