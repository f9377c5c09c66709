"""Accepting a message through a RawMessageStore: durable before anyone is told it was
accepted. The API's send comes here (services/composing.py); the SMTP edge in AWS writes
through adapters/aws/s3_writer.py instead, and through here only over a blocking store
(edge/smtp/handler.py's OffLoopWriter: the tests' and benchmarks' in-memory one)."""

from __future__ import annotations

from mailcore.domain.envelope import Envelope
from mailcore.ports import RawMessageStore


def accept_message(store: RawMessageStore, message_id: str, raw: bytes, envelope: Envelope) -> str:
    """Store raw bytes and envelope; only a return from here may be answered with 250."""
    return store.put(message_id, raw, envelope)
