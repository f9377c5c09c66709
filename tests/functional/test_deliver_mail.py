"""The deliver function with the template's queue and table in moto, into a real edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from mailcore import delivery_wiring, wiring
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.services.filing import file_inbound
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.edge_support import running_edge
from tests.functional.test_file_message import Context


@pytest.fixture
def deliver(stack, monkeypatch):
    monkeypatch.setenv("MAILPIPE_OUTGOING_QUEUE_URL", stack.outputs["OutgoingQueueUrl"])
    monkeypatch.setenv("MAILPIPE_DELIVERY_MODE", "direct")
    monkeypatch.setenv("MAILPIPE_HOSTNAME", "crepes.fr")
    wiring.aws_adapters.cache_clear()
    delivery_wiring.delivery_adapters.cache_clear()
    yield load_function("deliver_mail")
    delivery_wiring.delivery_adapters.cache_clear()


def _submit(count: int, recipient: str) -> None:
    """Submitted mail from a hosted sender, filed as file_message would: jobs get queued."""
    adapters = aws_adapters()
    for number in range(count):
        envelope = Envelope(mail_from="bob@hamburger.edu", rcpt_tos=(recipient,),
                            peer="192.0.2.1", helo="laptop", tls=True,
                            submitted_by="bob@hamburger.edu", received_at=datetime.now(UTC))
        key = adapters.store.put(new_message_id(), f"From: bob@hamburger.edu\r\n"
                                 f"Subject: {number}\r\n\r\nhi\r\n".encode(), envelope)
        file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains, adapters.outgoing,
                     references=adapters.references, views=adapters.imap_views)


def _batch(stack) -> dict:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=stack.outputs["OutgoingQueueUrl"],
                                   MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:out",
        "awsRegion": REGION} for m in messages]}


def test_a_batch_to_one_domain_goes_over_one_connection(deliver, stack, monkeypatch):
    pools: list[SmtpClientPool] = []
    original = delivery_wiring.DeliveryAdapters.new_pool

    def recording_pool(self, hostname):
        pools.append(original(self, hostname))
        return pools[-1]

    monkeypatch.setattr(delivery_wiring.DeliveryAdapters, "new_pool", recording_pool)
    with running_edge(hosted=("elsewhere.test",), accounts={"zoe@elsewhere.test": "x"}) as edge:
        monkeypatch.setenv("MAILPIPE_MX_OVERRIDES", f"elsewhere.test=127.0.0.1:{edge.mx_port}")
        _submit(10, "zoe@elsewhere.test")
        response = deliver.lambda_handler(_batch(stack), Context(120_000))
    assert response == {"batchItemFailures": []}
    assert [pool.connections_opened for pool in pools] == [1]
    assert len(edge.store.message_keys()) == 10


def test_deferred_job_stays_queued_with_its_retry_delay(deliver, stack, monkeypatch):
    from mailpipe.local.launcher import free_port

    monkeypatch.setenv("MAILPIPE_MX_OVERRIDES", f"elsewhere.test=127.0.0.1:{free_port()}")
    _submit(1, "zoe@elsewhere.test")
    batch = _batch(stack)

    response = deliver.lambda_handler(batch, Context(120_000))

    assert response == {"batchItemFailures": [{"itemIdentifier":
                                               batch["Records"][0]["messageId"]}]}
    job = json.loads(batch["Records"][0]["body"])
    ledger = delivery_wiring.delivery_adapters().ledger
    statuses = ledger.statuses(job["message_id"], "elsewhere.test")
    assert statuses["zoe@elsewhere.test"].state.value == "deferred"
    assert "4.4.1 connection to 127.0.0.1" in statuses["zoe@elsewhere.test"].reply


def test_jobs_the_invocation_has_no_time_left_for_go_back_to_the_queue_at_once(
        deliver, stack, monkeypatch):
    with running_edge(hosted=("elsewhere.test",), accounts={"zoe@elsewhere.test": "x"}) as edge:
        monkeypatch.setenv("MAILPIPE_MX_OVERRIDES", f"elsewhere.test=127.0.0.1:{edge.mx_port}")
        _submit(3, "zoe@elsewhere.test")
        batch = _batch(stack)
        assert len(batch["Records"]) == 3
        # Time for two jobs; the third finds less than one job may take.
        response = deliver.lambda_handler(batch, Context(120_000, 120_000, 30_000))
    assert response == {"batchItemFailures": [
        {"itemIdentifier": batch["Records"][2]["messageId"]}]}
    assert len(edge.store.message_keys()) == 2
    # Visible again at once, not after the queue's 12-minute visibility timeout.
    again = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=stack.outputs["OutgoingQueueUrl"], MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in again] == [batch["Records"][2]["body"]]


def test_a_record_that_fails_alone_is_reported_and_the_others_delivered(
        deliver, stack, monkeypatch):
    with running_edge(hosted=("elsewhere.test",), accounts={"zoe@elsewhere.test": "x"}) as edge:
        monkeypatch.setenv("MAILPIPE_MX_OVERRIDES", f"elsewhere.test=127.0.0.1:{edge.mx_port}")
        _submit(3, "zoe@elsewhere.test")
        batch = _batch(stack)
        # A body that is no job, one that is not JSON: each fails alone, in any place.
        batch["Records"][0]["body"] = "not json"
        batch["Records"][2]["body"] = json.dumps({"message_id": "x"})
        response = deliver.lambda_handler(batch, Context(120_000))
    assert response == {"batchItemFailures": [
        {"itemIdentifier": batch["Records"][0]["messageId"]},
        {"itemIdentifier": batch["Records"][2]["messageId"]}]}
    assert len(edge.store.message_keys()) == 1


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": {"0": {}}}])
def test_an_event_that_is_not_an_sqs_batch_is_refused(deliver, event):
    # The invocation fails, saying so, as it did with powertools' batch processor.
    with pytest.raises(Exception, match="SQS"):
        deliver.lambda_handler(event, Context(120_000))


def _queue_depth(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_operator_lists_retries_and_redrives_jobs(deliver, stack, monkeypatch):
    from mailpipe.local.launcher import free_port
    from mailpipe.queue_admin import QueueTarget, list_jobs, redrive, retry_deferred

    monkeypatch.setenv("MAILPIPE_MX_OVERRIDES", f"elsewhere.test=127.0.0.1:{free_port()}")
    _submit(1, "zoe@elsewhere.test")
    deliver.lambda_handler(_batch(stack), Context(120_000))  # deferred, now in flight
    target = QueueTarget(boto3.client("sqs", region_name=REGION),
                         boto3.client("dynamodb", region_name=REGION),
                         stack.outputs["MailboxTableName"], stack.outputs["OutgoingQueueUrl"],
                         stack.outputs["OutgoingDeadLetterQueueUrl"])

    [line, dead] = list_jobs(target)
    assert " elsewhere.test zoe@elsewhere.test deferred attempts=1 next " in line
    assert dead == "dead-letter queue: 0 job(s)"

    assert retry_deferred(target) == 1
    assert _queue_depth(target.queue_url) == 2  # the waiting copy and the one to try now

    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=target.dead_letter_url, MessageBody='{"dead": true}')
    assert list_jobs(target)[-2:] == ["dead-letter queue: 1 job(s)",
                                      'dead (not a delivery job) {"dead": true}']
    assert redrive(target.sqs, target.dead_letter_url, target.queue_url) == 1
    assert _queue_depth(target.dead_letter_url) == 0
    assert _queue_depth(target.queue_url) == 3
