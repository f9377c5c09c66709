"""`mailpipe queue`: what the outgoing queue holds, and putting jobs (or inbound messages
that could not be filed) back on their queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.domain.delivery import DeliveryJob
from mailcore.errors import PermanentFailure


@dataclass(frozen=True)
class QueueTarget:
    sqs: Any
    dynamodb: Any
    table: str
    queue_url: str
    dead_letter_url: str


def list_jobs(target: QueueTarget) -> list[str]:
    lines = []
    for job in _ledger(target).all_jobs():
        for status in job.statuses.values():
            due = f" next {status.next_attempt}" if status.next_attempt and (
                status.state.value == "deferred") else ""
            lines.append(f"{job.message_id} {job.domain} {status.recipient} "
                         f"{status.state.value} attempts={status.attempts}{due} "
                         f"{status.reply}".rstrip())
    depth = target.sqs.get_queue_attributes(
        QueueUrl=target.dead_letter_url,
        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    lines.append(f"dead-letter queue: {depth['ApproximateNumberOfMessages']} job(s)")
    # A peek (visibility 0 leaves them where they are) at the first ten dead jobs.
    for message in target.sqs.receive_message(QueueUrl=target.dead_letter_url,
                                              MaxNumberOfMessages=10,
                                              VisibilityTimeout=0).get("Messages", []):
        try:
            dead = DeliveryJob.from_json(message["Body"])
            lines.append(f"dead {dead.message_id} {dead.domain} {' '.join(dead.recipients)}")
        except PermanentFailure:
            lines.append(f"dead (not a delivery job) {message['Body'][:80]}")
    return lines


def retry_deferred(target: QueueTarget) -> int:
    """Queue every job with a recipient still pending again, to be tried now. The copy
    still waiting in the queue finds those recipients done and sends nothing twice."""
    queued = 0
    for job in _ledger(target).all_jobs():
        if job.pending and job.job_json:
            target.sqs.send_message(QueueUrl=target.queue_url, MessageBody=job.job_json)
            queued += 1
    return queued


def _ledger(target: QueueTarget) -> DynamoDeliveryLedger:
    return DynamoDeliveryLedger(target.dynamodb, target.table)


def redrive(sqs: Any, dead_letter_url: str, queue_url: str) -> int:
    """Move what a dead-letter queue holds back to its queue: delivery jobs to the outgoing
    queue, or (after a fix) messages that could not be filed to the inbound queue. Both
    consumers are idempotent, so a message moved twice does no harm."""
    moved = 0
    while True:
        messages = sqs.receive_message(QueueUrl=dead_letter_url,
                                       MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
