"""Outgoing mail: one delivery job per message and destination domain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailcore.errors import PermanentFailure

DELIVERY_JOB_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DeliveryJob:
    message_id: str
    raw_key: str
    mail_from: str
    domain: str
    recipients: tuple[str, ...]
    queued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    attempts: int = 0

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "schema_version": DELIVERY_JOB_SCHEMA_VERSION,
            "message_id": self.message_id,
            "raw_key": self.raw_key,
            "mail_from": self.mail_from,
            "domain": self.domain,
            "recipients": list(self.recipients),
            "queued_at": self.queued_at.isoformat(),
            "attempts": self.attempts,
        }
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeliveryJob:
        try:
            document = json.loads(text)
            if document.get("schema_version") != DELIVERY_JOB_SCHEMA_VERSION:
                raise PermanentFailure("unknown delivery job schema")
            return cls(
                message_id=str(document["message_id"]),
                raw_key=str(document["raw_key"]),
                mail_from=str(document["mail_from"]),
                domain=str(document["domain"]),
                recipients=tuple(str(rcpt) for rcpt in document["recipients"]),
                queued_at=datetime.fromisoformat(document["queued_at"]),
                attempts=int(document.get("attempts", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentFailure("malformed delivery job") from exc


def jobs_for(message_id: str, raw_key: str, mail_from: str,
             remote_recipients: list[str]) -> list[DeliveryJob]:
    """Group remote recipients by domain: one job (and one SMTP transaction) per domain."""
    by_domain: dict[str, list[str]] = {}
    for recipient in remote_recipients:
        by_domain.setdefault(recipient.rsplit("@", 1)[-1].lower(), []).append(recipient)
    return [DeliveryJob(message_id, raw_key, mail_from, domain, tuple(recipients))
            for domain, recipients in sorted(by_domain.items())]
