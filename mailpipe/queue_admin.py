"""`mailpipe queue`: what the outgoing queue holds, and putting jobs (or inbound messages
that could not be filed, or junk lessons not learned) back on their queues."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.domain.delivery import DeliveryJob
from mailcore.errors import PermanentFailure

# `redrive --X`: the queue (template outputs) whose dead letters go back, and what they are.
# Every consumer is idempotent (file_message files once, learn_junk reconciles).
DEAD_LETTERS = {
    "inbound": ("InboundQueueUrl", "InboundDeadLetterQueueUrl",
                "message(s) moved back from the inbound dead-letter queue"),
    "junk_lessons": ("JunkLessonsQueueUrl", "JunkLessonsDeadLetterQueueUrl",
                     "junk lesson notice(s) moved back from their dead-letter queue"),
}


def add_parser(commands: Any, add_stack_options: Callable[[argparse.ArgumentParser], None]
               ) -> None:
    queue = commands.add_parser("queue", help="outgoing mail: list, retry, redrive")
    queue.add_argument("action", nargs="?", choices=["list", "retry", "redrive"],
                       default="list", help="list jobs (default); retry deferred jobs now; "
                       "move dead-lettered jobs back to the queue")
    which = queue.add_mutually_exclusive_group()
    which.add_argument("--inbound", action="store_true",
                       help="with redrive: the inbound dead-letter queue (messages that "
                       "could not be filed) back to the inbound queue")
    which.add_argument("--junk-lessons", action="store_true",
                       help="with redrive: notices of junk lessons the learner could not "
                       "take back to the junk lessons queue")
    add_stack_options(queue)


def run(arguments: argparse.Namespace, outputs: dict[str, str], client: Any) -> list[str]:
    """The lines `mailpipe queue` prints."""
    target = QueueTarget(client("sqs"), client("dynamodb"), outputs["MailboxTableName"],
                         outputs["OutgoingQueueUrl"], outputs["OutgoingDeadLetterQueueUrl"])
    if arguments.action == "retry":
        return [f"{retry_deferred(target)} job(s) queued again"]
    if arguments.action == "redrive":
        for option, (queue, dead_letters, moved) in DEAD_LETTERS.items():
            if getattr(arguments, option):
                return [f"{redrive(target.sqs, outputs[dead_letters], outputs[queue])} {moved}"]
        moved_jobs = redrive(target.sqs, target.dead_letter_url, target.queue_url)
        return [f"{moved_jobs} job(s) moved back from the dead-letter queue"]
    return list_jobs(target)


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
    queue, or (after a fix) messages that could not be filed to the inbound queue, junk
    lesson notices to theirs. The consumers are idempotent, so a message moved twice does
    no harm."""
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
