"""Delivery jobs on the SQS outgoing queue, queued once per (message, domain)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_ledger import job_key
from mailcore.domain.delivery import DeliveryJob
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


class SqsDeliveryQueue:
    def __init__(self, sqs: SQSClient, queue_url: str, dynamodb: DynamoDBClient,
                 table: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dynamodb = dynamodb
        self._table = table

    def enqueue(self, job: DeliveryJob) -> None:
        key = job_key(job.message_id, job.domain)
        try:
            # The ledger makes a repeated filing event queue nothing new; a crash between
            # send and ledger can still queue a job twice, which delivery must tolerate.
            if "Item" in self._dynamodb.get_item(TableName=self._table, Key=key,
                                                 ConsistentRead=True):
                return
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=job.to_json())
            # The job itself is kept too, so an operator can queue it again (mailpipe queue).
            self._dynamodb.put_item(TableName=self._table, Item={
                **key,
                "recipients": {"L": [{"S": rcpt} for rcpt in job.recipients]},
                "queued_at": {"S": job.queued_at.isoformat()},
                "job": {"S": job.to_json()},
            })
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("queueing delivery failed") from exc
