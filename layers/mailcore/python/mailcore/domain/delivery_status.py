"""Per-recipient delivery status, kept with each delivery job."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RecipientState(StrEnum):
    QUEUED = "queued"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"


FINAL_STATES = {RecipientState.DELIVERED, RecipientState.BOUNCED}


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str
    state: RecipientState
    attempts: int = 0
    reply: str = ""  # the remote reply, or our reason
    next_attempt: str | None = None  # ISO time, for deferred
    remote_mta: str | None = None
