"""The local runtime feeds SQS-triggered functions as Lambda does."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
from moto import mock_aws

from mailpipe.local.event_sources import SqsPoller
from mailpipe.local.functions import FunctionError
from mailpipe.local.provision import QueueSource

REGION = "us-east-1"


class RecordingFunction:
    """Stands in for a worker: fails the records whose body says so."""

    def __init__(self, crash: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.crash = crash

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append(event["Records"])
        if self.crash:
            raise FunctionError("boom", "RuntimeError")
        return {"batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"] if json.loads(record["body"]).get("fail")]}


def _queues(sqs: Any, max_receives: int) -> tuple[str, str, str]:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="inbound", Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": max_receives})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return queue, arn, dlq


def _poller(sqs: Any, queue: str, arn: str, function: Any, batch: int = 10) -> SqsPoller:
    source = QueueSource(function="Fn", queue_url=queue, queue_arn=arn, batch_size=batch,
                         report_batch_item_failures=True, visibility_timeout=1)
    return SqsPoller(source, function, sqs, REGION)


def _count(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_partial_batch_failure_deletes_only_the_finished_records(caplog):
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue, arn, _ = _queues(sqs, max_receives=5)
        for body in ({"n": 1}, {"n": 2, "fail": True}, {"n": 3}):
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
        function = RecordingFunction()

        assert _poller(sqs, queue, arn, function).poll_once() == 3

        [batch] = function.batches
        assert {record["eventSource"] for record in batch} == {"aws:sqs"}
        assert _count(sqs, queue) == 1  # only the failed record is left, in flight
        assert "Fn failed 1 of a batch of 3; they come back after 1 s" in caplog.messages


def test_batch_size_is_respected():
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue, arn, _ = _queues(sqs, max_receives=5)
        for number in range(5):
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": number}))
        function = RecordingFunction()
        poller = _poller(sqs, queue, arn, function, batch=2)
        while poller.poll_once():
            pass
        assert [len(batch) for batch in function.batches] == [2, 2, 1]


def test_crashing_function_leaves_the_batch_until_redrive_moves_it_to_the_dlq():
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue, arn, dlq = _queues(sqs, max_receives=2)
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"poison": True}))
        function = RecordingFunction(crash=True)
        poller = _poller(sqs, queue, arn, function)

        deadline = time.monotonic() + 15
        while _count(sqs, dlq) == 0 and time.monotonic() < deadline:
            poller.poll_once()
            time.sleep(0.2)  # the visibility timeout (1 s) brings it back

        assert len(function.batches) == 2  # received maxReceiveCount times, then dead-lettered
        assert _count(sqs, dlq) == 1
        assert _count(sqs, queue) == 0
