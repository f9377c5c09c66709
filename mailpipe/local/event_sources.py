"""SQS event source mappings, as Lambda runs them: batches, partial failures, redrive.

Messages a batch did not finish stay on the queue and come back after the queue's
visibility timeout; the queue's own redrive policy (in moto, as in SQS) moves them
to the dead-letter queue after maxReceiveCount receives.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from mailpipe.local.background import BackgroundLoop
from mailpipe.local.functions import FunctionError, LocalFunction
from mailpipe.local.provision import QueueSource

log = logging.getLogger("mailpipe.local")

# moto's long poll spins without sleeping; short polls with a client-side pause
# cost far less CPU for a few milliseconds of latency.
IDLE_PAUSE_SECONDS = 0.05
MAX_IDLE_PAUSE_SECONDS = 0.5


class SqsPoller(BackgroundLoop):
    def __init__(self, source: QueueSource, function: LocalFunction, sqs: Any,
                 region: str) -> None:
        super().__init__(f"poll-{source.function}")
        self._source = source
        self._function = function
        self._sqs = sqs
        self._region = region

    def _run(self) -> None:
        pause = IDLE_PAUSE_SECONDS
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except Exception:
                log.exception("polling %s failed", self._source.queue_arn)
                handled = 0
            if handled:
                pause = IDLE_PAUSE_SECONDS
            else:
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_IDLE_PAUSE_SECONDS)

    def poll_once(self) -> int:
        """Receive a batch, invoke the function, delete what it finished; the batch's size."""
        response = self._sqs.receive_message(
            QueueUrl=self._source.queue_url,
            MaxNumberOfMessages=min(self._source.batch_size, 10),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        try:
            result = self._function.invoke(event)
        except FunctionError as exc:
            # The function's own log has the trace; the messages return after the
            # visibility timeout, as in Lambda.
            log.warning("%s failed a batch of %d: %s", self._source.function, len(messages),
                        exc.summary)
            return len(messages)
        finished = self._finished(messages, result)
        if finished:
            deleted = self._sqs.delete_message_batch(
                QueueUrl=self._source.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                         for index, message in enumerate(finished)],
            )
            for failure in deleted.get("Failed", []):
                # The message comes back after its visibility timeout and is handled again.
                log.warning("deleting a handled message from %s failed: %s %s",
                            self._source.queue_arn, failure.get("Code"), failure.get("Message"))
        return len(messages)

    def _finished(self, messages: list[dict[str, Any]], result: Any) -> list[dict[str, Any]]:
        if not self._source.report_batch_item_failures:
            return messages
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        ids = {message["MessageId"] for message in messages}
        failed = {failure.get("itemIdentifier") for failure in failures}
        if not failed <= ids:
            # As in Lambda: an unknown or empty identifier fails the whole batch.
            return []
        if failed:
            # Said here because the function's batch processor does not log what it
            # reports: a record that failed was otherwise seen only 3 minutes later.
            log.warning("%s failed %d of a batch of %d; they come back after %d s",
                        self._source.function, len(failed), len(messages),
                        self._source.visibility_timeout)
        return [message for message in messages if message["MessageId"] not in failed]

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody")
            or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._source.queue_arn,
            "awsRegion": self._region,
        }
