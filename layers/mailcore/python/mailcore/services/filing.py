"""Routing a stored message by its envelope: hosted recipients get it in their Inbox (in
their Junk when the edge's verdict quarantines it, or when their junk filter says so), the
sender of submitted mail gets a Sent copy, remote recipients get delivery jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import derived_message_id
from mailcore.domain.mailbox import INBOX, JUNK, SENT, StoredMessage
from mailcore.domain.message import MessageSummary
from mailcore.errors import MessageNotFound, PermanentFailure
from mailcore.observability import logger
from mailcore.parsing.bounded import summarise
from mailcore.ports import ImapViews, KeptView, MailboxWriter, RawMessageStore, RawReferences
from mailcore.s3_keys import message_id_of_key
from mailcore.services.imap_views import keep_views, view_of
from mailcore.services.outgoing import Outgoing, delivery_jobs, queue_once
from mailcore.services.recipients import HostedDomains, hosted_candidate

if TYPE_CHECKING:
    from mailcore.imap_view.view import ImapView
    from mailcore.services.junk_filing import JunkArrival, JunkFiling


@dataclass(frozen=True)
class FilingResult:
    message_id: str
    filed_for: tuple[str, ...]
    already_filed_for: tuple[str, ...]
    queued_for: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    """What filing one stored message takes: its copies (the first holds every reference
    to the raw bytes) and, for submitted mail, its delivery jobs."""

    message_id: str
    envelope: Envelope
    accounts: list[str]
    remote: list[str]
    copies: list[StoredMessage]
    jobs: list[DeliveryJob]
    parse_problem: str | None
    view: ImapView | None  # of the bytes, shared by every copy
    # What the junk filter decides the hosted copies' folders from (the bytes kept only
    # until the batch's decisions are made).
    junk_arrival: JunkArrival | None = None

    @property
    def holding(self) -> int:
        return len(self.copies) + len(self.jobs)


def file_inbound(
    key: str,
    store: RawMessageStore,
    mailboxes: MailboxWriter,
    domains: HostedDomains,
    outgoing: Outgoing | None = None,
    *,
    references: RawReferences,
    views: ImapViews,
    junk: JunkFiling | None = None,
) -> FilingResult:
    """File the message at `key` for each envelope recipient; safe to repeat.

    The edge accepts RCPT TO on the MX port only for existing accounts, so the envelope
    is the routing list; headers are never consulted. A recipient who already has this
    message gets no second copy, and a delivery job is queued once per domain. Every
    reference to the raw bytes is held in the same write as the first copy. Each copy's
    IMAP view is put once it is filed. With `junk`, each hosted recipient's copy goes
    where that account's junk filter says (services.junk_filing); without, to the Inbox
    unless the edge's verdict quarantines the message.
    """
    [outcome] = file_inbound_together([key], store, mailboxes, domains, outgoing,
                                      references=references, views=views, junk=junk)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def file_inbound_together(
    keys: Sequence[str],
    store: RawMessageStore,
    mailboxes: MailboxWriter,
    domains: HostedDomains,
    outgoing: Outgoing | None = None,
    *,
    references: RawReferences,
    views: ImapViews,
    before_each: Callable[[str], None] | None = None,
    junk: JunkFiling | None = None,
) -> list[FilingResult | Exception]:
    """file_inbound for each key, with the messages' first copies filed together (one
    write per folder instead of one per message); each key's result, or what stopped it
    (one message's failure stops no other). `before_each(key)` is called before that
    message is fetched and parsed; what it raises is that key's outcome.

    Then every copy of each message filed gets its IMAP view, made once from the bytes,
    the views of all the messages put together: copies filed now and copies found filed
    by an earlier try alike (the same bytes give the same view, so a repeat is harmless,
    and a try that stopped after filing left none)."""
    outcomes: list[FilingResult | _Plan | Exception] = []
    for key in keys:
        try:
            if before_each is not None:
                before_each(key)
            outcomes.append(_plan(key, store, domains, outgoing, references, junk))
        except Exception as exc:  # noqa: BLE001 (reported as that key's outcome)
            outcomes.append(exc)
    if junk is not None:
        outcomes = _junk_decided(outcomes, junk)
    with_copies = {position: outcome for position, outcome in enumerate(outcomes)
                   if isinstance(outcome, _Plan) and outcome.copies}
    first_filed = dict(zip(with_copies, _file_first_copies(list(with_copies.values()),
                                                           mailboxes), strict=True))
    finished: list[FilingResult | Exception] = []
    for position, outcome in enumerate(outcomes):
        filed = first_filed.get(position, [])
        if isinstance(filed, Exception):
            finished.append(filed)
        elif isinstance(outcome, _Plan):
            try:
                finished.append(_finish(outcome, filed, mailboxes, outgoing))
            except Exception as exc:  # noqa: BLE001 (reported as that key's outcome)
                finished.append(exc)
        else:
            finished.append(outcome)
    keep_views(views, [KeptView(copy.account, copy.message_id, copy.raw_key, outcome.view)
                       for outcome, result in zip(outcomes, finished, strict=True)
                       if isinstance(outcome, _Plan) and outcome.view is not None
                       and isinstance(result, FilingResult) for copy in outcome.copies])
    return finished


def _plan(key: str, store: RawMessageStore, domains: HostedDomains, outgoing: Outgoing | None,
          references: RawReferences, junk: JunkFiling | None = None) -> _Plan | FilingResult:
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
    # The edge's verdict (issue 28): a DMARC quarantine, or a spoof of one of our domains.
    folder = JUNK if envelope.verdict is not None and envelope.verdict.junk else INBOX
    copies = [_stored(account, message_id, folder, envelope, key, len(raw), summary)
              for account in accounts]
    if junk is not None and envelope.submitted_by:
        junk.record_sent(envelope.submitted_by, envelope.rcpt_tos)  # safe on every try
    if envelope.submitted_by:
        copies.append(_sent_copy(envelope.submitted_by, message_id, envelope, key, raw,
                                 summary))
    # One view for every copy: the bytes are the same (and none for remote recipients).
    view = view_of(raw, message_id) if copies else None
    return _Plan(message_id, envelope, accounts, remote, copies, jobs, summary.parse_problem,
                 view, junk.arrival(envelope, raw, accounts, message_id)
                 if junk is not None and accounts else None)


def _junk_decided(outcomes: list[FilingResult | _Plan | Exception], junk: JunkFiling
                  ) -> list[FilingResult | _Plan | Exception]:
    """The plans with each hosted recipient's copy where that account's filter says (and
    never with $Junk: a lesson is the user's, not the filter's own guess), the filter
    states of the whole batch read at once. What stops that read (a TransientFailure)
    is the outcome of every message that needed it: each is retried."""
    judged = [outcome for outcome in outcomes
              if isinstance(outcome, _Plan) and outcome.junk_arrival is not None]
    try:
        filings = junk.file_together([plan.junk_arrival for plan in judged
                                      if plan.junk_arrival is not None])
    except Exception as exc:  # noqa: BLE001 (reported as each such key's outcome)
        return [exc if any(outcome is plan for plan in judged) else outcome
                for outcome in outcomes]
    # The hosted recipients' copies come first, one per account (a Sent copy after them).
    decided = {id(plan): replace(plan, junk_arrival=None, copies=[
        replace(copy, folder=filed[copy.account].folder,
                junk_verdict=filed[copy.account].verdict)
        for copy in plan.copies[:len(plan.accounts)]] + plan.copies[len(plan.accounts):])
        for plan, filed in zip(judged, filings, strict=True)}
    return [decided.get(id(outcome), outcome) for outcome in outcomes]


def _file_first_copies(plans: list[_Plan], mailboxes: MailboxWriter
                       ) -> list[list[bool] | Exception]:
    """Each plan's first copy filed, holding every reference (before any copy exists, and
    without a write of its own): [whether it was filed now], or why not."""
    arrivals = [(plan.copies[0], plan.holding) for plan in plans]
    try:
        return [[filed] for filed in mailboxes.file_together(arrivals)]
    except Exception as exc:  # noqa: BLE001 (each is tried alone below)
        if len(arrivals) == 1:
            return [exc]
        # One message may be what a shared write cannot take (an item too large, say): so
        # each is filed alone, and only what fails alone fails. One that the shared write
        # did file is then found filed, as on any retry.
        logger.warning("filing messages together failed; filing each alone",
                       messages=len(plans))
    alone: list[list[bool] | Exception] = []
    for copy, holding in arrivals:
        try:
            alone.append([mailboxes.file(copy, holding=holding)])
        except Exception as exc:  # noqa: BLE001 (reported as that message's outcome)
            alone.append(exc)
    return alone


def _finish(plan: _Plan, first_filed: list[bool], mailboxes: MailboxWriter,
            outgoing: Outgoing | None) -> FilingResult:
    """The rest of the copies, one by one, then the delivery jobs. A first copy filed now
    also says that no earlier try got this far, so none queued a job."""
    copy_filed = first_filed + [mailboxes.file(copy) for copy in plan.copies[1:]]
    first_try = bool(copy_filed) and copy_filed[0]
    accounts = plan.accounts
    filed = [account for account, done in zip(accounts, copy_filed, strict=False) if done]
    duplicate = [account for account, done in zip(accounts, copy_filed, strict=False)
                 if not done]
    queued: list[str] = []
    if plan.envelope.submitted_by:
        for job in plan.jobs:
            assert outgoing is not None
            queue_once(job, outgoing.queue, outgoing.ledger, first_try=first_try)
            queued.extend(job.recipients)
    elif plan.remote:
        # Only submitted mail may go to other domains; the MX refuses them at RCPT.
        logger.warning("remote recipients on unauthenticated mail ignored",
                       message_id=plan.message_id, recipients=len(plan.remote))
    if plan.parse_problem:
        logger.warning("message filed with parse problem", message_id=plan.message_id,
                       parse_problem=plan.parse_problem)
    return FilingResult(plan.message_id, tuple(filed), tuple(duplicate), tuple(queued))


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
