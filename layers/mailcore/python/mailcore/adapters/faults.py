"""Fault injection by configuration, for durability tests of a running system.

A fault is on while its switch file exists, so a test can flip it from outside the
process at an exact moment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mailcore.domain.envelope import Envelope
from mailcore.errors import StorageUnavailable
from mailcore.ports import MessageWriter


class FaultInjectingWriter:
    """Storage at the edge that fails while the switch is on."""

    def __init__(self, writer: MessageWriter, switch: Path) -> None:
        self._writer = writer
        self._switch = switch

    async def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        if self._switch.exists():
            raise StorageUnavailable(f"fault injected ({self._switch})")
        return await self._writer.put(message_id, raw, envelope)


@dataclass(frozen=True)
class FilingFaults:
    """Crashes of the filing function, chosen per message by a hash of its key, so a
    test can tell which messages were hit. `crash`: this share of messages crashes on
    its first filing, after the write (the worst moment: written, not acknowledged).
    `poison`: this share crashes every time, before the write. `state`: a folder that
    remembers which crashes already happened."""

    crash: float
    poison: float
    state: Path

    @classmethod
    def from_config(cls, text: str) -> FilingFaults:
        """`crash=0.2,poison=0.01,state=/tmp/faults`"""
        values = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        return cls(float(values.get("crash", 0)), float(values.get("poison", 0)),
                   Path(values.get("state", "/tmp/mailpipe-faults")))  # noqa: S108

    def before_filing(self, key: str) -> None:
        if chosen(key, self.poison, "poison"):
            raise InjectedFault(f"poison message {key}")

    def after_filing(self, key: str) -> None:
        if not chosen(key, self.crash, "crash"):
            return
        self.state.mkdir(parents=True, exist_ok=True)
        marker = self.state / hashlib.sha256(key.encode()).hexdigest()
        if not marker.exists():
            marker.touch()
            raise InjectedFault(f"crash after filing {key}")


class InjectedFault(RuntimeError):
    """Stands for a crash: not a MailError, so nothing treats it as expected."""


def chosen(key: str, share: float, purpose: str) -> bool:
    digest = hashlib.sha256(f"{purpose}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
