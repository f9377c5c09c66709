"""file_message against the template's own S3 bucket, queue and table, in moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from mailcore.adapters.aws.s3_store import ENVELOPE_METADATA
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX
from mailcore.s3_keys import accepted_objects_prefix
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_event, load_function

SEED = (b"From: Alice <alice@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
        b"Subject: Test Email\r\n\r\nHello\r\nHow are you?\r\n")


class Context:
    function_name = "file_message"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:file_message"
    aws_request_id = "test-request"

    def __init__(self, *remaining_ms: int) -> None:
        # Each call tells the next figure; the last one repeats.
        self._remaining_ms = list(remaining_ms or (30_000,))

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms.pop(0) if len(self._remaining_ms) > 1 else self._remaining_ms[0]


@pytest.fixture
def file_message(stack):
    return load_function("file_message")


def _store(raw: bytes, *rcpts: str) -> str:
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=rcpts, peer="192.0.2.1",
                        helo="crepes.fr", tls=False, received_at=datetime.now(UTC))
    return aws_adapters().store.put(new_message_id(), raw, envelope)


def _notifications(stack) -> dict:
    """What S3 put on the inbound queue, as Lambda's SQS event source would deliver it."""
    sqs = boto3.client("sqs", region_name=REGION)
    source = stack.queue_sources[0]
    messages = sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=10,
                                   AttributeNames=["All"]).get("Messages", [])
    return {"Records": [{
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"], "attributes": message.get("Attributes", {}),
        "messageAttributes": {}, "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn, "awsRegion": REGION,
    } for message in messages if "s3:TestEvent" not in message["Body"]]}


def _inbox(account: str):
    return aws_adapters().mailboxes.list_folder(account, INBOX, 50, None).messages


def test_s3_notification_files_message_into_each_envelope_recipients_inbox(stack, file_message):
    key = _store(SEED, "bob@hamburger.edu", "carol@hamburger.edu")
    event = _notifications(stack)
    assert len(event["Records"]) == 1

    response = file_message.lambda_handler(event, Context())

    assert response == {"batchItemFailures": []}
    for account in ("bob@hamburger.edu", "carol@hamburger.edu"):
        [stored] = _inbox(account)
        assert stored.summary.subject == "Test Email"
        assert stored.raw_key == key
    folders = {f.name: f for f in aws_adapters().mailboxes.folders("bob@hamburger.edu")}
    assert (folders[INBOX].total, folders[INBOX].unread) == (1, 1)


def test_repeated_event_does_not_duplicate_messages_or_counts(stack, file_message):
    _store(SEED, "bob@hamburger.edu")
    event = _notifications(stack)

    file_message.lambda_handler(event, Context())
    file_message.lambda_handler(event, Context())

    assert len(_inbox("bob@hamburger.edu")) == 1
    [inbox] = [f for f in aws_adapters().mailboxes.folders("bob@hamburger.edu")
               if f.name == INBOX]
    assert inbox.total == 1


def test_url_encoded_key_in_notification_is_decoded(stack, file_message):
    key = _store(SEED, "bob@hamburger.edu")
    event = load_event("sqs_s3_object_created.json")
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = key.replace("/", "%2F")
    event["Records"][0]["body"] = json.dumps(body)

    assert file_message.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert [m.raw_key for m in _inbox("bob@hamburger.edu")] == [key]


def test_record_that_fails_is_reported_alone_and_the_rest_are_filed(stack, file_message):
    _store(SEED, "bob@hamburger.edu")
    event = _notifications(stack)
    missing = load_event("sqs_s3_object_created.json")["Records"][0]  # names no stored object
    event["Records"].append(missing)

    response = file_message.lambda_handler(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": missing["messageId"]}]}
    assert len(_inbox("bob@hamburger.edu")) == 1


@pytest.mark.parametrize(("body", "fails"), [
    ("not json", True),
    (json.dumps({"Records": [{"s3": {}}]}), True),  # a notification naming no object
    (json.dumps({"Records": "x"}), True),
    (json.dumps("names Records"), True),
    (json.dumps(["Records"]), True),
    (json.dumps([1]), False),  # JSON but no object without Records: names no key
    (json.dumps({"Event": "s3:TestEvent"}), False),
])
def test_a_malformed_notification_fails_alone(stack, file_message, body, fails):
    _store(SEED, "bob@hamburger.edu")
    event = _notifications(stack)
    odd = {**event["Records"][0], "messageId": "odd-one", "body": body}
    event["Records"].insert(0, odd)

    response = file_message.lambda_handler(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "odd-one"}] if fails else []}
    assert len(_inbox("bob@hamburger.edu")) == 1


def test_hostile_messages_are_filed_beside_their_batch_mates_and_read(stack, file_message):
    from mailcore.services.reading import read_message
    from tests.unit.test_hostile_mime import huge_header, many_parts, nested, nested_rfc822

    hostile = [nested(400, "mixed"), nested_rfc822(400), many_parts(4000, b"\r\n"),
               huge_header(b"Cc", b"(", 4000)]
    keys = [_store(raw, "bob@hamburger.edu") for raw in [SEED, *hostile]]
    event = _notifications(stack)
    assert len(event["Records"]) == len(keys)

    assert file_message.lambda_handler(event, Context()) == {"batchItemFailures": []}

    adapters = aws_adapters()
    inbox = {message.raw_key: message for message in _inbox("bob@hamburger.edu")}
    assert set(inbox) == set(keys)
    assert inbox[keys[0]].summary.parse_problem is None
    for key in keys[1:]:
        assert inbox[key].summary.parse_problem  # flagged, filed, and readable
        view = read_message("bob@hamburger.edu", inbox[key].message_id, adapters.mailboxes,
                            adapters.store, adapters.settings.hostname)
        assert view.stored.summary.from_ == "Mallory <mallory@evil.example>"


def test_records_the_invocation_has_no_time_left_for_fail_alone(stack, file_message):
    first, second = _store(SEED, "bob@hamburger.edu"), _store(SEED, "bob@hamburger.edu")
    event = _notifications(stack)
    event["Records"].sort(key=lambda record: second in record["body"])

    # Time for the first record; the second finds less than one message may take.
    response = file_message.lambda_handler(event, Context(30_000, 3_000))

    assert response == {"batchItemFailures": [
        {"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert [message.raw_key for message in _inbox("bob@hamburger.edu")] == [first]


def test_s3_test_event_is_acknowledged_without_filing(stack, file_message):
    response = file_message.lambda_handler(load_event("sqs_s3_test_event.json"), Context())
    assert response == {"batchItemFailures": []}


def test_submitted_mail_queues_one_job_per_remote_domain_once(stack, file_message):
    envelope = Envelope(mail_from="bob@hamburger.edu",
                        rcpt_tos=("carol@hamburger.edu", "zoe@crepes.fr", "yan@crepes.fr"),
                        peer="192.0.2.1", helo="laptop", tls=True,
                        submitted_by="bob@hamburger.edu")
    aws_adapters().store.put(new_message_id(), SEED.replace(
        b"From: Alice <alice@crepes.fr>", b"From: bob@hamburger.edu"), envelope)
    event = _notifications(stack)

    file_message.lambda_handler(event, Context())
    file_message.lambda_handler(event, Context())

    sqs = boto3.client("sqs", region_name=REGION)
    outgoing_url = stack.outputs["OutgoingQueueUrl"]
    jobs = sqs.receive_message(QueueUrl=outgoing_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(job["Body"])["recipients"] for job in jobs] == [
        ["zoe@crepes.fr", "yan@crepes.fr"]]
    assert len(_inbox("carol@hamburger.edu")) == 1
    sent = aws_adapters().mailboxes.list_folder("bob@hamburger.edu", "Sent", 10, None)
    assert [m.seen for m in sent.messages] == [True]


def test_envelope_rides_on_the_message_object_unless_too_large_for_metadata(stack):
    store, s3 = aws_adapters().store, boto3.client("s3", region_name=REGION)
    bucket = stack.outputs["MessageBucketName"]
    few = Envelope(mail_from="alice@crepes.fr", rcpt_tos=("bob@hamburger.edu",),
                   peer="192.0.2.1", helo="crepes.fr", tls=True)
    many = Envelope(mail_from="alice@crepes.fr", peer="192.0.2.1", helo="crepes.fr", tls=True,
                    rcpt_tos=tuple(f"recipient-number-{n:03}@hamburger.edu" for n in range(100)))
    for envelope, separate in ((few, False), (many, True)):
        message_id = new_message_id()
        key = store.put(message_id, b"Subject: x\r\n\r\nbody\r\n", envelope)
        head = s3.head_object(Bucket=bucket, Key=key)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=accepted_objects_prefix(message_id))
        assert (ENVELOPE_METADATA in head["Metadata"]) is not separate
        assert listed["KeyCount"] == (2 if separate else 1)
        assert store.get_message(key) == (envelope, b"Subject: x\r\n\r\nbody\r\n")
        assert store.get_envelope(key) == envelope


def test_operator_redrives_the_inbound_dead_letter_queue_and_the_messages_are_filed(
        stack, file_message):
    from mailpipe.cli import _parser
    from mailpipe.queue_admin import redrive

    key = _store(SEED, "bob@hamburger.edu")
    sqs = boto3.client("sqs", region_name=REGION)
    inbound, dead = stack.outputs["InboundQueueUrl"], stack.outputs["InboundDeadLetterQueueUrl"]
    # As after five failed receives: the notification waits in the dead-letter queue.
    for message in sqs.receive_message(QueueUrl=inbound, MaxNumberOfMessages=10)["Messages"]:
        sqs.send_message(QueueUrl=dead, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=inbound, ReceiptHandle=message["ReceiptHandle"])

    arguments = _parser().parse_args(["queue", "redrive", "--inbound"])
    assert (arguments.action, arguments.inbound) == ("redrive", True)
    assert redrive(sqs, dead, inbound) >= 1
    assert file_message.lambda_handler(_notifications(stack), Context()) == {
        "batchItemFailures": []}
    assert [message.raw_key for message in _inbox("bob@hamburger.edu")] == [key]
    assert "Messages" not in sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)


def test_a_notification_delivered_twice_in_one_batch_is_filed_once(stack, file_message,
                                                                   monkeypatch):
    from mailcore.services import filing

    warnings: list[str] = []
    monkeypatch.setattr(filing.logger, "warning", lambda message, **_: warnings.append(message))
    _store(SEED, "bob@hamburger.edu")
    event = _notifications(stack)
    # SQS delivers at least once: the same notification may come twice in one batch.
    event["Records"].append({**event["Records"][0], "messageId": "a-second-delivery"})

    assert file_message.lambda_handler(event, Context()) == {"batchItemFailures": []}

    assert len(_inbox("bob@hamburger.edu")) == 1
    # Filed together, not after a shared write that failed (one item written twice).
    assert warnings == []
