"""`mailpipe queue`: what the outgoing queue holds, and putting jobs back on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.domain.delivery_status import FINAL_STATES


@dataclass(frozen=True)
class QueueTarget:
    sqs: Any
    dynamodb: Any
    table: str
    queue_url: str
    dead_letter_url: str


def list_jobs(target: QueueTarget) -> list[str]:
    lines = []
    for message_id, domain, statuses in DynamoDeliveryLedger(target.dynamodb,
                                                             target.table).all_jobs():
        for status in statuses.values():
            due = f" next {status.next_attempt}" if status.next_attempt and (
                status.state.value == "deferred") else ""
            lines.append(f"{message_id} {domain} {status.recipient} {status.state.value} "
                         f"attempts={status.attempts}{due} {status.reply}".rstrip())
    dead = target.sqs.get_queue_attributes(
        QueueUrl=target.dead_letter_url,
        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    lines.append(f"dead-letter queue: {dead['ApproximateNumberOfMessages']} job(s)")
    return lines


def retry_deferred(target: QueueTarget) -> int:
    """Queue every job with a recipient still pending again, to be tried now. The copy
    still waiting in the queue finds those recipients done and sends nothing twice."""
    queued = 0
    paginator = target.dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=target.table,
                                   FilterExpression="begins_with(pk, :job)",
                                   ExpressionAttributeValues={":job": {"S": "JOB#"}}):
        for item in page.get("Items", []):
            statuses = item.get("statuses", {}).get("M", {})
            recipients = [entry["S"] for entry in item.get("recipients", {}).get("L", [])]
            pending = [rcpt for rcpt in recipients
                       if statuses.get(rcpt, {}).get("M", {}).get("state", {}).get("S")
                       not in {state.value for state in FINAL_STATES}]
            if pending and "job" in item:
                target.sqs.send_message(QueueUrl=target.queue_url, MessageBody=item["job"]["S"])
                queued += 1
    return queued


def redrive(target: QueueTarget) -> int:
    """Move dead-lettered jobs back to the outgoing queue."""
    moved = 0
    while True:
        messages = target.sqs.receive_message(QueueUrl=target.dead_letter_url,
                                              MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            target.sqs.send_message(QueueUrl=target.queue_url, MessageBody=message["Body"])
            target.sqs.delete_message(QueueUrl=target.dead_letter_url,
                                      ReceiptHandle=message["ReceiptHandle"])
            moved += 1
