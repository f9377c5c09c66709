"""Delivery decisions: delivered, deferred with backoff, bounced with a DSN, expired."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy

from mailcore.adapters.memory.delivery import InMemoryNextHops, InMemorySmtpSender
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.retry import RetryPolicy
from mailcore.s3_keys import message_key
from mailcore.services.delivery import deliver_job

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RAW = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"


def _recipients_sent(sender: InMemorySmtpSender) -> list[tuple[str, ...]]:
    return [recipients for _, recipients, _ in sender.sent]


def _run(sender, job=None, attempt=1, now=NOW, ledger=None, store=None, references=None):
    store = store or InMemoryMessageStore()
    references = references or InMemoryRawReferences()
    if job is None:
        key = store.put(new_message_id(), RAW, Envelope("alice@crepes.fr", ("x",), "p", "h",
                                                         False))
        job = DeliveryJob(new_message_id(), key, "alice@crepes.fr", "hamburger.edu",
                          tuple(sender.replies), queued_at=NOW)
    ledger = ledger or InMemoryDeliveryLedger()
    references.hold(job.raw_key, 1)  # the job's own reference (filing holds it)
    outcome = deliver_job(job, attempt=attempt, now=now, store=store, hops=InMemoryNextHops(),
                          sender=sender, ledger=ledger,
                          policy=RetryPolicy.parse("5m,10m", "5d"), reporting_mta="crepes.fr",
                          references=references, objects=store)
    return outcome, job, ledger, store


def test_mixed_replies_give_one_status_each_and_a_retry_for_the_deferred():
    sender = InMemorySmtpSender({"bob@hamburger.edu": (250, "2.0.0 Ok"),
                                 "carol@hamburger.edu": (451, "4.3.0 try later")})
    outcome, *_ = _run(sender)
    states = {s.recipient: s.state for s in outcome.statuses}
    assert states == {"bob@hamburger.edu": RecipientState.DELIVERED,
                      "carol@hamburger.edu": RecipientState.DEFERRED}
    assert outcome.retry_in == timedelta(minutes=5)
    assert outcome.dsn_message_id is None


def test_retry_sends_only_to_recipients_not_yet_delivered():
    sender = InMemorySmtpSender({"bob@hamburger.edu": (250, "2.0.0 Ok"),
                                 "carol@hamburger.edu": (451, "4.3.0 try later")})
    _, job, ledger, store = _run(sender)
    sender.replies["carol@hamburger.edu"] = (250, "2.0.0 Ok")
    outcome, *_ = _run(sender, job=job, attempt=2, ledger=ledger, store=store)
    assert _recipients_sent(sender) == [("bob@hamburger.edu", "carol@hamburger.edu"),
                                        ("carol@hamburger.edu",)]
    assert outcome.retry_in is None
    # A third delivery of the same job (SQS at least once) sends nothing.
    _run(sender, job=job, attempt=3, ledger=ledger, store=store)
    assert len(_recipients_sent(sender)) == 2


def test_permanent_failure_bounces_with_a_dsn_to_the_sender():
    sender = InMemorySmtpSender({"nobody@hamburger.edu": (550, "5.1.1 No such user here")})
    outcome, _, _, store = _run(sender)
    assert outcome.retry_in is None
    dsn_key = message_key(outcome.dsn_message_id)
    assert store.get_envelope(dsn_key).mail_from == ""  # from the null sender
    assert store.get_envelope(dsn_key).rcpt_tos == ("alice@crepes.fr",)
    report = email.message_from_bytes(store.get_raw(dsn_key), policy=policy.default)
    recipient_block = list(report.iter_parts())[1].get_payload()[1]
    assert recipient_block["Status"] == "5.1.1"
    assert recipient_block["Remote-MTA"] == "dns; mx.hamburger.edu"


def test_deferral_past_the_give_up_time_bounces_with_the_last_4xx_status():
    sender = InMemorySmtpSender({"bob@hamburger.edu": (451, "4.3.0 try later")})
    outcome, *_ = _run(sender, now=NOW + timedelta(days=5, seconds=1))
    [status] = outcome.statuses
    assert status.state is RecipientState.BOUNCED
    assert outcome.retry_in is None and outcome.dsn_message_id


def test_no_dsn_about_a_message_from_the_null_sender():
    sender = InMemorySmtpSender({"nobody@hamburger.edu": (550, "5.1.1 No such user here")})
    store = InMemoryMessageStore()
    key = store.put(new_message_id(), RAW, Envelope("", ("x",), "p", "h", False))
    job = DeliveryJob(new_message_id(), key, "", "hamburger.edu", ("nobody@hamburger.edu",),
                      queued_at=NOW)
    references = InMemoryRawReferences()
    references.hold(key, 2)  # the job's and the Sent copy's
    outcome, *_ = _run(sender, job=job, store=store, references=references)
    assert outcome.dsn_message_id is None
    assert store.message_keys() == [key]  # no DSN stored beside the message


def test_backoff_doubles_and_is_capped_by_default():
    policy_ = RetryPolicy()
    waits = [policy_.delay_after(n).total_seconds() / 60 for n in range(1, 10)]
    assert waits == [5, 10, 20, 40, 80, 160, 240, 240, 240]
    assert policy_.give_up_after == timedelta(days=5)


def test_a_job_bounces_before_sqs_would_dead_letter_it_silently():
    sender = InMemorySmtpSender({"bob@hamburger.edu": (451, "4.3.0 try later")})
    outcome, *_ = _run(sender, attempt=45)
    assert outcome.statuses[0].state is RecipientState.BOUNCED
    assert outcome.dsn_message_id
