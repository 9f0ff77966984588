"""Bits of a point's ``flags`` (the contract's ``point-flags``, a plain ``u32``).

Bits 0-3 are set by waystream's own transforms; bits 4-15 are reserved for them and the
host refuses (dead-letters) a point that sets one; user transforms use bits 16-31, which
the output document shows as ``user_16`` … ``user_31``.
"""

#: The speed from the previous point is above the configured limit (set by ``speed``).
IMPLAUSIBLE_SPEED = 1 << 0
#: The point is in a zone the previous point was not in (set by ``geofence``).
ZONE_ENTER = 1 << 1
#: The previous point was in a zone this one is not in (set by ``geofence``).
ZONE_EXIT = 1 << 2
#: The source had no valid altitude (set by ``parse-plt``).
ALTITUDE_MISSING = 1 << 3
#: Bits 4-15: waystream's, unused so far; the host refuses points that set them.
RESERVED = 0x0000FFF0
#: Bits 16-31: free for user transforms.
USER = 0xFFFF0000


def user(bit: int) -> int:
    """The mask of user flag ``bit`` (16-31): ``user(16) == 0x10000``."""
    if not 16 <= bit <= 31:
        raise ValueError(f"user flags are bits 16-31, not {bit}")
    return 1 << bit
