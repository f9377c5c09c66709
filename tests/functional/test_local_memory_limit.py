"""The local runtime holds each function to its MemorySize as Lambda does (issue 25, item 13):
a worker whose resident memory passes the limit is killed, its invocation fails, and an
SQS batch it was handling comes back after the visibility timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mailpipe.local.event_sources import SqsPoller
from mailpipe.local.functions import FunctionError, LocalFunction
from mailpipe.local.provision import FunctionSpec, Provisioned, QueueSource
from mailpipe.local.template import load_template
from tests.conftest import ROOT

REGION = "us-east-1"
LIMIT_MB = 96  # a small MemorySize, for this test's own function
# Each record's body says how many MiB the handler fills (written, so resident) and holds.
HANDLER = '''
import json
def lambda_handler(event, context):
    records = event.get("Records") or [{"body": json.dumps(event)}]
    held = [b"x" * (json.loads(record["body"])["mib"] * 2**20) for record in records]
    return {"batchItemFailures": [], "held": sum(map(len, held))}
'''


@pytest.fixture
def hog(tmp_path: Path) -> LocalFunction:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(logical_id="HogFunction", name="hog", code_dir=tmp_path,
                        handler="app.lambda_handler", layer_dirs=(), environment={},
                        timeout=20, memory_mb=LIMIT_MB)
    function = LocalFunction(spec, {}, lambda _name, _line: None, concurrency=1)
    yield function
    function.stop()


@pytest.mark.parametrize("mib", [LIMIT_MB + 20, 2 * LIMIT_MB, 4 * LIMIT_MB])
def test_an_invocation_over_the_memory_size_fails_and_the_next_one_runs(
        hog: LocalFunction, mib: int) -> None:
    assert hog.invoke({"mib": 8})["held"] == 8 * 2**20  # within the limit: answered

    with pytest.raises(FunctionError) as failure:
        hog.invoke({"mib": mib})

    assert failure.value.summary.startswith("Runtime.OutOfMemory: HogFunction ran out of "
                                            "memory")
    assert f"of {LIMIT_MB} MB" in failure.value.summary
    # A fresh worker takes the next invocation, as a new Lambda execution environment.
    assert hog.invoke({"mib": 8})["held"] == 8 * 2**20


def test_a_batch_that_runs_out_of_memory_comes_back_as_sqs_would(hog: LocalFunction) -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="inbound",
                                 Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        source = QueueSource(function="HogFunction", queue_url=queue, queue_arn=arn,
                             batch_size=10, report_batch_item_failures=True,
                             visibility_timeout=1)
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"mib": 3 * LIMIT_MB}))

        assert SqsPoller(source, hog, sqs, REGION).poll_once() == 1

        time.sleep(1.2)  # the visibility timeout
        [again] = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"],
                                      MaxNumberOfMessages=10)["Messages"]
        assert json.loads(again["Body"]) == {"mib": 3 * LIMIT_MB}
        assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_the_limit_is_the_templates_memory_size(stack: Provisioned) -> None:
    template = load_template(ROOT / "template.yaml")
    default = template["Globals"]["Function"]["MemorySize"]
    for logical_id, spec in stack.functions.items():
        declared = template["Resources"][logical_id]["Properties"].get("MemorySize", default)
        assert spec.memory_mb == declared, logical_id
