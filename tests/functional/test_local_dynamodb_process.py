"""moto's DynamoDB in a process of its own: reached directly by the stack's processes, through
the one public AWS endpoint by everyone else, metered once either way, and never left
running after `mailpipe up` ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from mailpipe.local.dynamodb_process import DynamoDbProcess
from mailpipe.local.launcher import free_ports
from mailpipe.local.metering import Meter, MeteredMotoServer
from mailpipe.local.stack import aws_environment
from tests.e2e.api_client import wait_until

KEYS = {"aws_access_key_id": "local", "aws_secret_access_key": "local",
        "region_name": "us-east-1"}
OBSERVER = {**KEYS, "aws_access_key_id": "observer"}


@dataclass
class TwoServers:
    public: str  # the stack's AWS endpoint: everything, DynamoDB forwarded
    dynamodb: DynamoDbProcess
    meter: Meter  # the public server's, with the DynamoDB process's added in

    def own_requests(self) -> dict[str, int]:
        """What the public server counted itself, without the other meter."""
        elsewhere, self.meter.elsewhere = self.meter.elsewhere, []
        try:
            return dict(self.meter.snapshot()["requests"])
        finally:
            self.meter.elsewhere = elsewhere


@pytest.fixture(scope="module")
def servers() -> Iterator[TwoServers]:
    dynamodb = DynamoDbProcess("127.0.0.1")
    dynamodb.start()
    (port,) = free_ports(1)
    meter = Meter(ignored_access_keys={OBSERVER["aws_access_key_id"]},
                  elsewhere=[dynamodb.snapshot])
    public = MeteredMotoServer(meter, "127.0.0.1", port,
                               forward={"dynamodb": dynamodb.endpoint})  # as `mailpipe up`
    public.start()
    try:
        yield TwoServers(f"http://127.0.0.1:{port}", dynamodb, meter)
    finally:
        public.stop()
        dynamodb.stop()


def _table(client: object, name: str) -> None:
    client.create_table(  # type: ignore[attr-defined]
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def test_dynamodb_through_the_public_endpoint_is_the_dynamodb_process_s(servers):
    through_public = boto3.client("dynamodb", endpoint_url=servers.public, **KEYS)
    direct = boto3.client("dynamodb", endpoint_url=servers.dynamodb.endpoint, **KEYS)
    _table(through_public, "forwarded")
    through_public.put_item(TableName="forwarded", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    assert "forwarded" in direct.list_tables()["TableNames"]
    assert direct.get_item(TableName="forwarded", Key={"pk": {"S": "a"}})["Item"]["n"] == {
        "N": "1"}
    # DynamoDB's refusals come back as they were made: type, message, status.
    with pytest.raises(through_public.exceptions.ResourceNotFoundException) as refused:
        through_public.get_item(TableName="missing", Key={"pk": {"S": "a"}})
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(through_public.exceptions.ConditionalCheckFailedException):
        through_public.put_item(TableName="forwarded", Item={"pk": {"S": "a"}},
                                ConditionExpression="attribute_not_exists(pk)")
    # Filing reads who won a race from a cancelled transaction's reasons.
    with pytest.raises(direct.exceptions.TransactionCanceledException) as cancelled:
        direct.transact_write_items(TransactItems=[
            {"Put": {"TableName": "forwarded", "Item": {"pk": {"S": "b"}}}},
            {"Update": {"TableName": "forwarded", "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :zero",
                        "ExpressionAttributeValues": {":two": {"N": "2"}, ":zero": {"N": "0"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}])
    reasons = cancelled.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert "Item" not in direct.get_item(TableName="forwarded", Key={"pk": {"S": "b"}})


def test_other_services_stay_with_the_public_endpoint(servers):
    s3 = boto3.client("s3", endpoint_url=servers.public, **KEYS)
    s3.create_bucket(Bucket="stays-public")
    assert "stays-public" in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    # The DynamoDB process's moto has S3 too, but nothing was sent there.
    elsewhere = boto3.client("s3", endpoint_url=servers.dynamodb.endpoint, **KEYS)
    assert "stays-public" not in [bucket["Name"]
                                  for bucket in elsewhere.list_buckets()["Buckets"]]


def test_each_call_is_metered_once_wherever_it_went(servers, monkeypatch):
    # As the stack's functions and edge reach it: botocore's per-service endpoint.
    for name, value in aws_environment(servers.public, servers.dynamodb.endpoint).items():
        monkeypatch.setenv(name, value)
    stack_process = boto3.client("dynamodb", **KEYS)
    outsider = boto3.client("dynamodb", endpoint_url=servers.public, **KEYS)
    observer = boto3.client("dynamodb", endpoint_url=servers.public, **OBSERVER)
    _table(outsider, "metered")
    before = servers.meter.snapshot()
    own_before = servers.own_requests()

    for _ in range(3):
        stack_process.put_item(TableName="metered", Item={"pk": {"S": "x"}})
    outsider.get_item(TableName="metered", Key={"pk": {"S": "x"}}, ConsistentRead=True)
    observer.get_item(TableName="metered", Key={"pk": {"S": "x"}})  # not counted anywhere

    after = servers.meter.snapshot()
    added = {name: count - before["requests"].get(name, 0)
             for name, count in after["requests"].items()}
    assert {name: count for name, count in added.items() if count} == {
        "dynamodb:PutItem": 3, "dynamodb:GetItem": 1}
    assert after["dynamodb_write_units"] - before["dynamodb_write_units"] == 3
    assert after["dynamodb_read_units"] - before["dynamodb_read_units"] == 1
    # The stack's own calls went straight to the DynamoDB process, not through the public one.
    own = servers.own_requests()
    assert own.get("dynamodb:PutItem", 0) == own_before.get("dynamodb:PutItem", 0)
    assert own["dynamodb:GetItem"] == own_before.get("dynamodb:GetItem", 0) + 1


def _listening(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_dynamodb_process_ends_with_the_process_that_started_it():
    """Killed, `mailpipe up` cannot stop it: it ends when its stdin does."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, signal
        from mailpipe.local.dynamodb_process import DynamoDbProcess
        child = DynamoDbProcess("127.0.0.1")
        child.start()
        print(child.endpoint, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    endpoint = parent.stdout.readline().strip()
    parent.wait(timeout=30)
    assert parent.returncode == -9
    assert endpoint.startswith("http://127.0.0.1:")
    wait_until(lambda: not _listening(endpoint), timeout=15, interval=0.1,
               what="the orphaned DynamoDB process gone")
