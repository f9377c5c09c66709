"""Bouncing: recipients that failed for good get the sender an RFC 3464 DSN, stored like
any inbound message, so that filing puts it in the sender's Inbox."""

from __future__ import annotations

import re
from datetime import datetime

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientStatus
from mailcore.domain.dsn import FailedRecipient, build_dsn
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.observability import logger
from mailcore.ports import RawMessageStore

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(status: RecipientStatus) -> str:
    reply = status.reply.split(" ", 1)
    candidate = reply[1] if reply[0].isdigit() and len(reply) > 1 else status.reply
    match = _ENHANCED.match(candidate)
    if match:
        return match.group(0)
    # No enhanced code in the reply: the class of the failure is all we know.
    return "5.0.0" if status.reply[:1] == "5" else "4.4.7"


def bounce(job: DeliveryJob, raw: bytes, bounced: list[RecipientStatus],
           store: RawMessageStore, reporting_mta: str, now: datetime) -> str:
    """Store the DSN about `bounced` for the job's sender (the caller never asks for one
    about mail from the null sender); its message id."""
    dsn_id = new_message_id()
    failures = [FailedRecipient(
        address=status.recipient,
        status=enhanced_status(status),
        diagnostic=f"smtp; {status.reply}" if status.reply[:1].isdigit() else status.reply,
        remote_mta=status.remote_mta,
    ) for status in bounced]
    dsn = build_dsn(reporting_mta=reporting_mta, original_sender=job.mail_from,
                    original_raw=raw, arrival_date=job.queued_at, failures=failures,
                    message_id=dsn_id)
    # Stored like any inbound message: the filing pipeline puts it in the sender's Inbox.
    store.put(dsn_id, dsn, Envelope(mail_from="", rcpt_tos=(job.mail_from,), peer="127.0.0.1",
                                    helo=reporting_mta, tls=False, received_at=now))
    logger.info("dsn stored", message_id=job.message_id, dsn_message_id=dsn_id,
                recipients=len(failures))
    return dsn_id


