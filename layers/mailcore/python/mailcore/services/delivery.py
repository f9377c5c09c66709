"""Delivering one job (a message to one domain's recipients), deciding retries, bouncing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import (
    FINAL_STATES,
    RecipientState,
    RecipientStatus,
)
from mailcore.domain.next_hop import RecipientReply
from mailcore.domain.retry import RetryPolicy
from mailcore.domain.suppression import suppresses
from mailcore.errors import PermanentFailure, TransientFailure
from mailcore.observability import logger

if TYPE_CHECKING:
    from mailcore.ports import (
        DeliveryLedger,
        NextHopResolver,
        ObjectStore,
        RawMessageStore,
        RawReferences,
        SmtpSender,
        Suppressions,
    )
    from mailcore.services.mta_sts import TransportSecurity


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
    transport: TransportSecurity | None = None,
    suppressions: Suppressions | None = None,
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
        found = hops.resolve(job.domain)
        # MTA-STS (RFC 8461) for direct delivery: only the MX hosts the policy allows,
        # each over verified TLS; none left defers, naming why.
        restriction = transport.restrict(job.domain, found, now) if transport else None
        if restriction is not None and restriction.refusal is not None:
            replies = [RecipientReply(rcpt, 0, restriction.refusal, None) for rcpt in pending]
        else:
            replies = sender.send(restriction.hops if restriction else found, job.mail_from,
                                  pending, raw)
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
    if suppressions is not None and any(suppresses(reply) for reply in replies):
        # After the record: a failure here must not make the job send again.
        from mailcore.services.suppression import record_permanent_failures
        record_permanent_failures(job.mail_from, replies, now, suppressions)

    bounced = [status for status in statuses if status.state is RecipientState.BOUNCED]
    dsn_id = None
    if bounced and job.mail_from:  # never a DSN about a DSN (null reverse-path)
        # Imported here: most attempts bounce nothing, and building a DSN takes the email
        # package's policy and generator, which the function's cold start need not load.
        from mailcore.services.bounce import bounce
        dsn_id = bounce(job, raw, bounced, store, reporting_mta, now)
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
