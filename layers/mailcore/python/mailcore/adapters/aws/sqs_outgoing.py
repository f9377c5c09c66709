"""The SQS outgoing queue: delivery jobs, and the wait before a deferred job's retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.domain.delivery import DeliveryJob
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsDeliveryQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, job: DeliveryJob) -> None:
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=job.to_json())
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("queueing delivery failed") from exc

    def retry_later(self, receipt: str, seconds: int) -> None:
        # The visibility timeout is the wait: the job stays queued, invisible until then.
        try:
            self._sqs.change_message_visibility(QueueUrl=self._queue_url,
                                                ReceiptHandle=receipt,
                                                VisibilityTimeout=max(0, seconds))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("deferring delivery failed") from exc
