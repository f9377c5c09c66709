"""Raw bytes are never deleted while a copy still to be filed, or a delivery still to be
attempted, needs them: every interleaving of filing, deleting for good and delivering.

Against the template's table and bucket in moto, through the services the functions call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from mailcore.adapters.aws.dynamodb_keys import raw_references_key
from mailcore.adapters.memory.delivery import InMemoryNextHops, InMemorySmtpSender
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX, SENT
from mailcore.domain.retry import RetryPolicy
from mailcore.errors import MessageNotFound
from mailcore.s3_keys import MESSAGE_SUFFIX, MESSAGES_PREFIX, message_key
from mailcore.services.changes import delete_message
from mailcore.services.delivery import deliver_job
from mailcore.services.filing import file_inbound
from mailcore.services.reading import read_message
from mailcore.wiring import aws_adapters
from tests.conftest import REGION

BOB, CAROL, DAVE = "bob@hamburger.edu", "carol@hamburger.edu", "dave@hamburger.edu"
ZOE = "zoe@elsewhere.test"
RAW = b"From: bob@hamburger.edu\r\nSubject: shared\r\n\r\nhello\r\n"


class Crash(Exception):
    """The function dies here; SQS delivers the notification again."""


def _store(rcpts: tuple[str, ...], submitted_by: str | None = None) -> str:
    envelope = Envelope(mail_from=submitted_by or "alice@crepes.fr", rcpt_tos=rcpts,
                        peer="192.0.2.1", helo="h", tls=True, submitted_by=submitted_by,
                        received_at=datetime.now(UTC))
    return aws_adapters().store.put(new_message_id(), RAW, envelope)


def _file(key: str) -> None:
    adapters = aws_adapters()
    file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains, adapters.outgoing,
                 references=adapters.references, views=adapters.imap_views)


def _delete_for_good(account: str, message_id: str) -> None:
    adapters = aws_adapters()
    for _ in range(2):  # to Trash, then for good
        delete_message(account, message_id, adapters.mailboxes, adapters.store)


def _exists(key: str) -> bool:
    try:
        aws_adapters().store.get_raw(key)
    except MessageNotFound:
        return False
    return True


def _deliver(job: DeliveryJob, code: int = 250) -> None:
    adapters = aws_adapters()
    deliver_job(job, attempt=1, now=datetime.now(UTC), store=adapters.store,
                hops=InMemoryNextHops(),
                sender=InMemorySmtpSender({rcpt: (code, "2.0.0 ok") for rcpt in job.recipients}),
                ledger=adapters.ledger, policy=RetryPolicy(), reporting_mta="hamburger.edu",
                references=adapters.references, objects=adapters.store)


def _queued_job(stack) -> DeliveryJob:
    sqs = boto3.client("sqs", region_name=REGION)
    [message] = sqs.receive_message(QueueUrl=stack.outputs["OutgoingQueueUrl"],
                                    MaxNumberOfMessages=10)["Messages"]
    return DeliveryJob.from_json(message["Body"])


@pytest.fixture
def outgoing(stack, monkeypatch):
    monkeypatch.setenv("MAILPIPE_OUTGOING_QUEUE_URL", stack.outputs["OutgoingQueueUrl"])
    aws_adapters.cache_clear()
    return stack


@pytest.mark.parametrize("deleter", [BOB, CAROL])
def test_a_recipient_deleting_before_another_is_filed_leaves_the_bytes_for_them(
        stack, monkeypatch, deleter):
    key = _store((BOB, CAROL, DAVE))
    mailboxes = aws_adapters().mailboxes
    original_file = type(mailboxes).file
    filed: list[str] = []

    def crash_after_one(self, message, **options):
        if filed:
            raise Crash("the function died after one copy")
        filed.append(message.account)
        return original_file(self, message, **options)

    monkeypatch.setattr(type(mailboxes), "file", crash_after_one)
    with pytest.raises(Crash):
        _file(key)
    monkeypatch.setattr(type(mailboxes), "file", original_file)

    # The one who got it deletes it for good before the others are filed.
    [first] = filed
    message_id = key.split("/")[1]
    _delete_for_good(first, message_id)
    assert _exists(key)

    _file(key)  # SQS delivers the notification again
    others = [account for account in (BOB, CAROL, DAVE) if account != first]
    adapters = aws_adapters()
    for account in others:
        view = read_message(account, message_id, adapters.mailboxes, adapters.store,
                            adapters.settings.hostname)
        assert view.stored.summary.subject == "shared"
    for account in others:
        _delete_for_good(account, message_id)
    assert not _exists(key)  # the last copy took the bytes with it


def test_the_sent_copy_deleted_before_the_job_is_queued_leaves_the_bytes_for_delivery(
        outgoing, monkeypatch):
    key = _store((ZOE,), submitted_by=BOB)
    outgoing_ports = aws_adapters().outgoing
    assert outgoing_ports is not None
    queue = outgoing_ports.queue
    original_send = type(queue).send

    def crash(self, job):
        raise Crash("the function died between the Sent copy and the job")

    monkeypatch.setattr(type(queue), "send", crash)
    with pytest.raises(Crash):
        _file(key)
    monkeypatch.setattr(type(queue), "send", original_send)

    message_id = key.split("/")[1]
    _delete_for_good(BOB, message_id)  # Bob deletes his Sent copy at once
    assert _exists(key)

    _file(key)
    job = _queued_job(outgoing)
    _deliver(job)
    assert not _exists(key)  # the job was the last to need it


def test_a_job_delivered_twice_gives_its_reference_back_once(outgoing):
    key = _store((ZOE,), submitted_by=BOB)
    _file(key)
    job = _queued_job(outgoing)
    _deliver(job)
    _deliver(job)  # SQS delivers the job again
    message_id = key.split("/")[1]
    adapters = aws_adapters()
    [sent] = adapters.mailboxes.list_folder(BOB, SENT, 10, None).messages
    assert _exists(key)  # still Bob's Sent copy's
    assert read_message(BOB, sent.message_id, adapters.mailboxes, adapters.store,
                        adapters.settings.hostname)
    _delete_for_good(BOB, message_id)
    assert not _exists(key)


def test_a_bounce_quotes_the_message_before_the_last_reference_lets_it_go(outgoing):
    key = _store((ZOE,), submitted_by=BOB)
    _file(key)
    _delete_for_good(BOB, key.split("/")[1])
    job = _queued_job(outgoing)
    _deliver(job, code=550)
    assert not _exists(key)
    dsn_keys = [k for k in _all_message_keys(outgoing) if k != key]
    assert len(dsn_keys) == 1
    envelope, dsn = aws_adapters().store.get_message(dsn_keys[0])
    assert envelope.rcpt_tos == (BOB,) and b"Subject: shared" in dsn


def test_a_late_duplicate_notification_after_everything_was_deleted_is_done(stack):
    key = _store((BOB,))
    _file(key)
    _delete_for_good(BOB, key.split("/")[1])
    assert not _exists(key)
    _file(key)  # no error: it was filed and let go
    assert aws_adapters().mailboxes.list_folder(BOB, INBOX, 10, None).messages == ()


def test_a_message_the_filing_never_saw_is_still_an_error(stack):
    with pytest.raises(MessageNotFound):
        _file(message_key(new_message_id()))


def _all_message_keys(stack) -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=stack.outputs["MessageBucketName"], Prefix=MESSAGES_PREFIX)
    return [item["Key"] for item in listed.get("Contents", [])
            if item["Key"].endswith(MESSAGE_SUFFIX)]


def test_references_item_counts_every_copy_and_job_before_the_first_copy(outgoing):
    key = _store((CAROL, ZOE, "yan@other.test"), submitted_by=BOB)
    _file(key)
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=outgoing.outputs["MailboxTableName"],
        Key=raw_references_key(key))["Item"]
    # Carol's Inbox, Bob's Sent copy, and a job for each of two remote domains.
    assert json.loads(item["refs"]["N"]) == 4
