"""Fault injection by configuration, for durability tests of a running system.

A fault is on while its switch file exists, so a test can flip it from outside the
process at an exact moment.
"""

from __future__ import annotations

from pathlib import Path

from mailcore.domain.envelope import Envelope
from mailcore.errors import StorageUnavailable
from mailcore.ports import RawMessageStore


class FaultInjectingStore:
    def __init__(self, store: RawMessageStore, switch: Path) -> None:
        self._store = store
        self._switch = switch

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        if self._switch.exists():
            raise StorageUnavailable(f"fault injected ({self._switch})")
        return self._store.put(message_id, raw, envelope)

    def get_raw(self, key: str) -> bytes:
        return self._store.get_raw(key)

    def get_envelope(self, key: str) -> Envelope:
        return self._store.get_envelope(key)
