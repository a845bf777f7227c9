"""Time-sortable ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32).

Written here rather than imported: python-ulid costs ~28 ms of import on every cold `masque assume`,
and the layout is ten lines. Ids sort by creation time, so newest-first is an index scan.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str = "") -> str:
    """A 26-character ULID-style id, optionally prefixed (e.g. `ses_`)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def id_time_ms(ulid: str) -> int:
    """Milliseconds since the epoch encoded in an id made by `new_id` (prefix ignored)."""
    body = ulid[-26:]
    value = 0
    for ch in body:
        value = value * 32 + _ALPHABET.index(ch)
    return value >> 80
