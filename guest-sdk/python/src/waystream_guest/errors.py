"""Exceptions turned into the contract's error text.

An exception escaping a componentize-py export traps the instance (the host sees only
"unreachable executed" and re-instantiates the module). The SDK catches it instead and
returns ``err`` with a text the dead letter shows: ``Type: message``, then the traceback,
innermost frames kept when it is long, at most :data:`LIMIT` bytes (the host keeps 4 KiB
of a cause by default, ``[limits] cause_bytes``).
"""

from __future__ import annotations

import os
import traceback

#: Longest error text the SDK hands the host, in UTF-8 bytes.
LIMIT = 3072

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


class TransformError(Exception):
    """An error whose message is the whole cause: no type name, no traceback. For refusals
    a user should read as they are ("max_speed_mps must be positive")."""


def describe(exc: BaseException, limit: int = LIMIT) -> str:
    """``Type: message`` and the traceback (without the SDK's own frames), cut to ``limit``
    bytes keeping the first line and the innermost frames."""
    if isinstance(exc, TransformError):
        return cut(str(exc), limit)
    te = traceback.TracebackException.from_exception(exc)
    # The SDK's frames (the call into the user's method) say nothing about the error.
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not os.path.abspath(f.filename).startswith(_SDK_DIR + os.sep)]
    )
    lines = ["".join(te.format_exception_only()).strip(), "Traceback (most recent call last):"]
    lines += [frame.rstrip("\n") for frame in te.stack.format()]
    # A chained exception ("raise … from e", or raised while handling e): name it too.
    chained = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for _ in range(8):  # chains can loop; a few links say enough
        if chained is None:
            break
        lines.append(f"caused by: {type(chained).__name__}: {chained}")
        chained = chained.__cause__ or (None if chained.__suppress_context__ else chained.__context__)
    return cut("\n".join(lines), limit)


def cut(text: str, limit: int = LIMIT) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes: its first line, ``…``, and its end."""
    data = text.encode()
    if len(data) <= limit:
        return text
    first = text.split("\n", 1)[0].encode()[: limit // 2]
    marker = f"\n… ({len(data)} bytes, cut) …\n".encode()
    tail = data[len(data) - (limit - len(first) - len(marker)) :]
    return (first + marker + tail).decode(errors="ignore")
