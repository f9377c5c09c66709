"""Message ids: unique, time-ordered, URL- and S3-key-safe (a ULID)."""

from __future__ import annotations

import hashlib
import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id(now_ms: int | None = None) -> str:
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    value = (timestamp << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_message_id(text: str) -> bool:
    return len(text) == 26 and all(char in _CROCKFORD for char in text)



def derived_message_id(message_id: str, purpose: str) -> str:
    """A second id for another copy of the same message in the same mailbox (the Sent copy
    of mail to oneself): same time part, so it sorts alike, and the same on every retry."""
    digest = int.from_bytes(hashlib.sha256(f"{message_id}/{purpose}".encode()).digest()[:10])
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[digest & 31])
        digest >>= 5
    return message_id[:10] + "".join(reversed(chars))
