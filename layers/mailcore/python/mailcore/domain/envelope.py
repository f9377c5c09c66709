"""The SMTP envelope: who the message is from and for, as the session said it.

Routing uses the envelope only; the message's own From/To headers are for display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailcore.domain.junk import JunkSignals
from mailcore.domain.verdict import Verdict
from mailcore.errors import PermanentFailure

# 2 added the verification verdict (issue 28), 3 the junk signals (issue 29); earlier
# ones are still read (a message accepted then may be filed after an upgrade): without
# a verdict, without signals.
ENVELOPE_SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)


@dataclass(frozen=True)
class Envelope:
    mail_from: str  # "" is the null reverse-path (bounces)
    rcpt_tos: tuple[str, ...]
    peer: str
    helo: str
    tls: bool
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    submitted_by: str | None = None  # the authenticated account, for submitted mail
    # What the MX edge verified (SPF, DKIM, DMARC); None for submitted mail and for
    # messages accepted with verification off or before it existed.
    verdict: Verdict | None = None
    # What the MX edge found that junks a message whatever its history (issue 29).
    signals: JunkSignals = field(default_factory=JunkSignals)

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "schema_version": ENVELOPE_SCHEMA_VERSION,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "peer": self.peer,
            "helo": self.helo,
            "tls": self.tls,
            "received_at": self.received_at.isoformat(),
            "submitted_by": self.submitted_by,
            "verdict": None if self.verdict is None else self.verdict.to_document(),
            "signals": self.signals.to_document(),
        }
        return json.dumps(document, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        try:
            document = json.loads(data)
            if document.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
                raise PermanentFailure(
                    f"unknown envelope schema {document.get('schema_version')!r}"
                )
            return cls(
                mail_from=str(document["mail_from"]),
                rcpt_tos=tuple(str(rcpt) for rcpt in document["rcpt_tos"]),
                peer=str(document["peer"]),
                helo=str(document["helo"]),
                tls=bool(document["tls"]),
                received_at=datetime.fromisoformat(document["received_at"]),
                submitted_by=document.get("submitted_by"),
                verdict=(None if document.get("verdict") is None
                         else Verdict.from_document(document["verdict"])),
                signals=JunkSignals.from_document(document.get("signals") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentFailure("malformed envelope document") from exc
