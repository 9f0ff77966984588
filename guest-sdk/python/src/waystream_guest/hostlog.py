"""Logging through the host (the contract's ``log`` import).

``info("…")`` and friends write one line into the host's log, tagged with the module's
name and version; the host caps the line length and the lines per call. Natively (tests)
lines go to standard error, or to the harness that captures them.

Inside a component, calling an import while componentize-py pre-initialises the module
(at build time, when your module's top level runs) fails the build. So until the host
first calls the component, lines are queued (at most :data:`QUEUE_LIMIT`) and written at
the start of the first call, usually ``init``.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Callable, List, Optional, Tuple


class Level(IntEnum):
    """The contract's ``level`` enum, same order."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


#: Lines kept while the host cannot be called yet; later ones are counted, not kept.
QUEUE_LIMIT = 64

Sink = Callable[[Level, str], None]

_sink: Optional[Sink] = None
_queue: Optional[List[Tuple[Level, str]]] = None
_dropped = 0


def log(level: Level, message: object) -> None:
    """Writes ``message`` (made a string) at ``level``."""
    global _dropped
    text = str(message)
    if _sink is not None:
        _sink(Level(level), text)
    elif _queue is not None:
        if len(_queue) < QUEUE_LIMIT:
            _queue.append((Level(level), text))
        else:
            _dropped += 1
    else:
        print(f"[{Level(level).name}] {text}", file=sys.__stderr__)


def trace(message: object) -> None:
    log(Level.TRACE, message)


def debug(message: object) -> None:
    log(Level.DEBUG, message)


def info(message: object) -> None:
    log(Level.INFO, message)


def warn(message: object) -> None:
    log(Level.WARN, message)


def error(message: object) -> None:
    log(Level.ERROR, message)


def defer() -> None:
    """Queues lines until :func:`connect` (the component's state at build time)."""
    global _queue
    if _sink is None and _queue is None:
        _queue = []


def connect(sink: Optional[Sink]) -> None:
    """Sends lines to ``sink`` from now on (``None``: standard error), after the queued ones."""
    global _sink, _queue, _dropped
    _sink = sink
    queued, _queue = _queue or [], None
    for level, text in queued:
        log(level, text)
    if _dropped:
        log(Level.WARN, f"{_dropped} log lines written before the first call were dropped")
        _dropped = 0
