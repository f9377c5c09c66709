"""Routing a stored message by its envelope: hosted recipients get it in their Inbox,
the sender of submitted mail gets a Sent copy, remote recipients get delivery jobs."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import derived_message_id, message_id_of_key
from mailcore.domain.mailbox import INBOX, SENT, StoredMessage
from mailcore.domain.message import MessageSummary, summarise
from mailcore.errors import MessageNotFound, PermanentFailure
from mailcore.observability import logger
from mailcore.ports import (
    DeliveryLedger,
    DeliveryQueue,
    MailboxWriter,
    RawMessageStore,
    RawReferences,
)
from mailcore.services.recipients import HostedDomains, hosted_candidate
from mailcore.services.routing import delivery_jobs, queue_once


@dataclass(frozen=True)
class Outgoing:
    """Where submitted mail for other domains goes: the queue, and the jobs' record."""

    queue: DeliveryQueue
    ledger: DeliveryLedger


@dataclass(frozen=True)
class FilingResult:
    message_id: str
    filed_for: tuple[str, ...]
    already_filed_for: tuple[str, ...]
    queued_for: tuple[str, ...]


def file_inbound(
    key: str,
    store: RawMessageStore,
    mailboxes: MailboxWriter,
    domains: HostedDomains,
    outgoing: Outgoing | None = None,
    *,
    references: RawReferences,
) -> FilingResult:
    """File the message at `key` for each envelope recipient; safe to repeat.

    The edge accepts RCPT TO on the MX port only for existing accounts, so the envelope
    is the routing list; headers are never consulted. A recipient who already has this
    message gets no second copy, and a delivery job is queued once per domain. Every
    reference to the raw bytes is held in the same write as the first copy.
    """
    message_id = message_id_of_key(key)
    if message_id is None:
        raise PermanentFailure(f"not a message key: {key!r}")
    try:
        envelope, raw = store.get_message(key)
    except MessageNotFound:
        if references.released(key):
            # A late duplicate of a notification: filed, then deleted by its owners.
            logger.info("message already filed and deleted", message_id=message_id)
            return FilingResult(message_id, (), (), ())
        raise
    summary = summarise(raw)
    accounts: list[str] = []
    remote: list[str] = []
    for rcpt in dict.fromkeys(envelope.rcpt_tos):
        account = hosted_candidate(rcpt, domains)
        (remote if account is None else accounts).append(account or rcpt)
    accounts = list(dict.fromkeys(accounts))  # two spellings of one account: one copy
    jobs = []
    if envelope.submitted_by and remote:
        if outgoing is None:
            raise PermanentFailure("remote recipients but no outgoing queue configured")
        jobs = delivery_jobs(message_id, key, envelope.mail_from, remote)
    copies = [_stored(account, message_id, INBOX, envelope, key, len(raw), summary)
              for account in accounts]
    if envelope.submitted_by:
        copies.append(_sent_copy(envelope.submitted_by, message_id, envelope, key, raw,
                                 summary))
    # Every reference is held in the write of the first copy: before any copy exists, and
    # without a write of its own. A first copy filed now also says that no earlier try got
    # this far, so none queued a job.
    holding = len(copies) + len(jobs)
    copy_filed = [mailboxes.file(copy, holding=holding if index == 0 else 0)
                  for index, copy in enumerate(copies)]
    first_try = bool(copy_filed) and copy_filed[0]
    filed = [account for account, done in zip(accounts, copy_filed, strict=False) if done]
    duplicate = [account for account, done in zip(accounts, copy_filed, strict=False)
                 if not done]
    queued: list[str] = []
    if envelope.submitted_by:
        for job in jobs:
            assert outgoing is not None
            queue_once(job, outgoing.queue, outgoing.ledger, first_try=first_try)
            queued.extend(job.recipients)
    elif remote:
        # Only submitted mail may go to other domains; the MX refuses them at RCPT.
        logger.warning("remote recipients on unauthenticated mail ignored",
                       message_id=message_id, recipients=len(remote))
    if summary.parse_problem:
        logger.warning("message filed with parse problem", message_id=message_id,
                       parse_problem=summary.parse_problem)
    return FilingResult(message_id, tuple(filed), tuple(duplicate), tuple(queued))


def _sent_copy(sender: str, message_id: str, envelope: Envelope, key: str, raw: bytes,
               summary: MessageSummary) -> StoredMessage:
    # Mail to oneself is in the Inbox under its own id; the Sent copy then needs another.
    sent_id = message_id if sender not in envelope.rcpt_tos else derived_message_id(
        message_id, SENT)
    return _stored(sender, sent_id, SENT, envelope, key, len(raw), summary, frozenset({"seen"}))


def _stored(account: str, message_id: str, folder: str, envelope: Envelope, key: str, size: int,
            summary: MessageSummary, flags: frozenset[str] = frozenset()) -> StoredMessage:
    return StoredMessage(account=account, message_id=message_id, folder=folder,
                         accepted_id=message_id_of_key(key),
                         received_at=envelope.received_at, raw_key=key, size=size,
                         summary=summary, flags=flags)
