"""A running local stack's AWS resources, found through its outputs file."""

from __future__ import annotations

import json

import boto3

from mailcore.s3_keys import message_key
from mailpipe.local.launcher import StackProcess
from mailpipe.local.stack import outputs_file


class Aws:
    """The running stack's queues and bucket, as its outputs file names them."""

    def __init__(self, stack: StackProcess) -> None:
        self.outputs = json.loads(outputs_file(stack.state_dir, stack.aws_port).read_text())
        options = {"endpoint_url": f"http://127.0.0.1:{stack.aws_port}", "region_name":
                   "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        self.sqs = boto3.client("sqs", **options)
        self.s3 = boto3.client("s3", **options)

    def depth(self, output: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.outputs[output], AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(value) for value in attributes["Attributes"].values())

    def raw(self, message_id: str) -> bytes:
        return self.s3.get_object(Bucket=self.outputs["MessageBucketName"],
                                  Key=message_key(message_id))["Body"].read()

    def empty(self) -> bool:
        """Nothing waiting or in flight in any queue, dead-letter queues included."""
        return all(self.depth(name) == 0 for name in (
            "InboundQueueUrl", "InboundDeadLetterQueueUrl", "OutgoingQueueUrl",
            "OutgoingDeadLetterQueueUrl"))
