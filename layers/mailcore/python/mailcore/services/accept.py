"""Accepting a message at the edge: durable before the 250."""

from __future__ import annotations

from mailcore.domain.envelope import Envelope
from mailcore.ports import RawMessageStore


def accept_message(store: RawMessageStore, message_id: str, raw: bytes, envelope: Envelope) -> str:
    """Store raw bytes and envelope; only a return from here may be answered with 250."""
    return store.put(message_id, raw, envelope)
