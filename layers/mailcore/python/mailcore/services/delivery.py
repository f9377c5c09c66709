"""Delivering one job (a message to one domain's recipients), deciding retries, bouncing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import (
    FINAL_STATES,
    RecipientState,
    RecipientStatus,
)
from mailcore.domain.dsn import FailedRecipient, build_dsn
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.retry import RetryPolicy
from mailcore.errors import PermanentFailure, TransientFailure
from mailcore.observability import logger
from mailcore.ports import (
    DeliveryLedger,
    NextHopResolver,
    ObjectStore,
    RawMessageStore,
    RawReferences,
    RecipientReply,
    SmtpSender,
)

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class DeliveryOutcome:
    statuses: list[RecipientStatus]
    retry_in: timedelta | None  # None: nothing is left to try
    dsn_message_id: str | None = None


def deliver_job(
    job: DeliveryJob,
    *,
    attempt: int,
    now: datetime,
    store: RawMessageStore,
    hops: NextHopResolver,
    sender: SmtpSender,
    ledger: DeliveryLedger,
    policy: RetryPolicy,
    reporting_mta: str,
    references: RawReferences,
    objects: ObjectStore,
) -> DeliveryOutcome:
    """One delivery attempt. Safe to repeat: recipients already delivered or bounced are
    left alone, so a job delivered twice by SQS sends nothing twice."""
    known = ledger.statuses(job.message_id, job.domain)
    pending = tuple(rcpt for rcpt in job.recipients
                    if rcpt not in known or known[rcpt].state not in FINAL_STATES)
    if not pending:
        # Done before; giving the reference back may not have happened (a crash).
        _done_with_raw(job, references, objects)
        return DeliveryOutcome(list(known.values()), None)
    raw = store.get_raw(job.raw_key)
    try:
        replies = sender.send(hops.resolve(job.domain), job.mail_from, pending, raw)
    except PermanentFailure as exc:
        status = getattr(exc, "status", "5.1.2")
        replies = [RecipientReply(rcpt, 550, f"{status} {exc.public}", None) for rcpt in pending]
    except TransientFailure as exc:
        replies = [RecipientReply(rcpt, 0, f"4.4.3 {exc}", None) for rcpt in pending]

    expired = policy.gives_up(attempt, now - job.queued_at)
    retry_in = policy.delay_after(attempt)
    statuses = []
    for reply in replies:
        previous = known.get(reply.recipient)
        attempts = (previous.attempts if previous else 0) + 1
        statuses.append(_status(reply, attempts, expired, now + retry_in))
    ledger.record(job.message_id, job.domain, statuses)

    bounced = [status for status in statuses if status.state is RecipientState.BOUNCED]
    dsn_id = None
    if bounced and job.mail_from:  # never a DSN about a DSN (null reverse-path)
        dsn_id = _bounce(job, raw, bounced, store, reporting_mta, now)
    deferred = any(status.state is RecipientState.DEFERRED for status in statuses)
    if not deferred:
        _done_with_raw(job, references, objects)  # after the DSN, which quotes it
    logger.info("delivery attempt", message_id=job.message_id, domain=job.domain,
                attempt=attempt, delivered=sum(s.state is RecipientState.DELIVERED
                                               for s in statuses),
                deferred=deferred, bounced=len(bounced))
    return DeliveryOutcome(statuses, retry_in if deferred else None, dsn_id)


def _done_with_raw(job: DeliveryJob, references: RawReferences, objects: ObjectStore) -> None:
    if references.release_job(job.raw_key, job.domain):
        # The Sent copy and every other copy were deleted while this job was pending.
        objects.delete_message(job.raw_key)
        logger.info("raw message deleted after delivery", message_id=job.message_id)


def _status(reply: RecipientReply, attempts: int, expired: bool,
            next_attempt: datetime) -> RecipientStatus:
    text = f"{reply.code} {reply.text}".strip() if reply.code else reply.text
    if 200 <= reply.code < 300:
        return RecipientStatus(reply.recipient, RecipientState.DELIVERED, attempts, text,
                               remote_mta=reply.remote_mta)
    if 500 <= reply.code < 600:
        return RecipientStatus(reply.recipient, RecipientState.BOUNCED, attempts, text,
                               remote_mta=reply.remote_mta)
    if expired:
        return RecipientStatus(reply.recipient, RecipientState.BOUNCED, attempts,
                               f"{text} (gave up retrying)", remote_mta=reply.remote_mta)
    return RecipientStatus(reply.recipient, RecipientState.DEFERRED, attempts, text,
                           next_attempt.isoformat(), reply.remote_mta)


def enhanced_status(status: RecipientStatus) -> str:
    reply = status.reply.split(" ", 1)
    candidate = reply[1] if reply[0].isdigit() and len(reply) > 1 else status.reply
    match = _ENHANCED.match(candidate)
    if match:
        return match.group(0)
    # No enhanced code in the reply: the class of the failure is all we know.
    return "5.0.0" if status.reply[:1] == "5" else "4.4.7"


def _bounce(job: DeliveryJob, raw: bytes, bounced: list[RecipientStatus],
            store: RawMessageStore, reporting_mta: str, now: datetime) -> str:
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


