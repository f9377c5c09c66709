"""moto's server as the local runtime serves it keeps what DynamoDB and SQS promise under
concurrent requests (mailpipe/local/atomic_requests.py): an update applied at once,
conditional writes and transactions that never both pass one condition, no message lost or
brought back by deletes beside sends and S3's notifications.

Each scenario runs on real servers, with threads, twice: against moto as installed, where
moto's own gap (a check, then a write) is widened by a pause so the race shows every time
(transactions excepted, below), and against the local runtime's server with the same pause,
where it must not show. When a moto release closes a gap, its "as installed" case fails and
says the lock can go.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cheroot.wsgi import Server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from mailpipe.local.launcher import free_port
from mailpipe.local.metering import Meter, MeteredMotoServer

PAUSE = 0.05  # inside moto's gap; a few times the server's switch interval
THREADS = 8


@pytest.fixture(params=["moto as installed", "local runtime"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    """(endpoint, whether it is the local runtime's server)."""
    port = free_port()
    if request.param == "local runtime":
        server = MeteredMotoServer(Meter(), "127.0.0.1", port)
        server.start()
        stop = server.stop
    else:
        bare = Server(("127.0.0.1", port), DomainDispatcherApplication(create_backend_app),
                      numthreads=THREADS * 2)
        bare.prepare()
        threading.Thread(target=bare.serve, daemon=True).start()
        stop = bare.stop
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, request.param == "local runtime"
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=30)  # moto's state is this process's
        stop()


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local",
                        config=Config(max_pool_connections=THREADS * 2,
                                      retries={"max_attempts": 1}))


def _table(client: Any, name: str) -> str:
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return name


def _paused(factory: Callable[..., Any]) -> Callable[..., Any]:
    """A condition factory of moto's whose conditions pause once evaluated: the gap between
    moto's check and its write, widened."""
    def pausing_factory(*args: Any, **kwargs: Any) -> Any:
        condition = factory(*args, **kwargs)
        evaluate = condition.expr

        def paused_expr(item: Any) -> Any:
            result = evaluate(item)
            time.sleep(PAUSE)
            return result

        condition.expr = paused_expr
        return condition

    return pausing_factory


@pytest.fixture
def paused_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import table

    monkeypatch.setattr(table, "get_filter_expression", _paused(table.get_filter_expression))
    monkeypatch.setattr(models, "get_filter_expression", _paused(models.get_filter_expression))


def _all_at_once(call: Callable[[int], Any], count: int = THREADS) -> list[Any]:
    """call(0) .. call(count - 1) on threads released together; each result or error."""
    start = threading.Barrier(count)

    def one(number: int) -> Any:
        start.wait()
        try:
            return call(number)
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_one_of_many_conditional_puts_of_one_item_wins(endpoint, paused_conditions):
    url, local = endpoint
    client = _client(url, "dynamodb")
    table = _table(client, f"claims-{local}")
    outcomes = _all_at_once(lambda number: client.put_item(
        TableName=table, Item={"pk": {"S": "login#bob"}, "by": {"N": str(number)}},
        ConditionExpression="attribute_not_exists(pk)"))
    winners = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert (len(winners) == 1) is local, f"{len(winners)} conditional puts passed"
    if local:
        assert outcomes.count("ConditionalCheckFailedException") == THREADS - 1


def test_transactions_never_pass_one_condition_together(endpoint, paused_conditions):
    """Each transaction takes one of three places and writes its ticket: three succeed.
    On moto as installed, the outcome of the race varies (moto checks each condition a
    second time as it writes, and restores whole tables when that check fails): it is
    asserted on the local runtime's server only."""
    url, local = endpoint
    client = _client(url, "dynamodb")
    table = _table(client, f"places-{local}")
    client.put_item(TableName=table, Item={"pk": {"S": "places"}, "left": {"N": "3"}})

    def take(number: int) -> Any:
        return client.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"pk": {"S": "places"}},
                        "UpdateExpression": "SET #left = #left - :one",
                        "ConditionExpression": "#left >= :one",
                        "ExpressionAttributeNames": {"#left": "left"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"ticket#{number}"}}}}])

    outcomes = _all_at_once(take)
    left = client.get_item(TableName=table, Key={"pk": {"S": "places"}},
                           ConsistentRead=True)["Item"]["left"]["N"]
    tickets = client.scan(TableName=table, FilterExpression="begins_with(pk, :t)",
                          ExpressionAttributeValues={":t": {"S": "ticket#"}})["Count"]
    passed = sum(isinstance(outcome, dict) for outcome in outcomes)
    if local:
        assert (passed, tickets, left) == (3, 3, "0")


def test_a_read_never_sees_half_of_an_update(endpoint, monkeypatch):
    from moto.dynamodb.parsing import executors

    url, local = endpoint
    client = _client(url, "dynamodb")
    table = _table(client, f"folders-{local}")
    client.put_item(TableName=table, Item={"pk": {"S": "inbox"}, "a": {"N": "0"},
                                           "b": {"N": "0"}})
    execute = executors.SetExecutor.execute

    def paused_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = execute(self, *args, **kwargs)
        time.sleep(PAUSE)  # between one SET clause and the next
        return result

    monkeypatch.setattr(executors.SetExecutor, "execute", paused_execute)

    def update_or_read(number: int) -> Any:
        if number == 0:
            return client.update_item(TableName=table, Key={"pk": {"S": "inbox"}},
                                      UpdateExpression="SET a = :one, b = :one",
                                      ExpressionAttributeValues={":one": {"N": "1"}})
        seen = [("0", "0")]
        deadline = time.monotonic() + 10
        while seen[-1][1] == "0" and time.monotonic() < deadline:  # until b is set
            item = client.get_item(TableName=table, Key={"pk": {"S": "inbox"}})["Item"]
            seen.append((item["a"]["N"], item["b"]["N"]))
        return seen

    reads = [pair for seen in _all_at_once(update_or_read)[1:] for pair in seen]
    assert (("1", "0") not in reads) is local, "a read saw a after the update, b before"


def test_deletes_sends_and_notifications_at_once_lose_and_revive_nothing(endpoint,
                                                                         monkeypatch):
    """What a poller does (delete what it handled) beside the edge (a PutObject, announced
    to the queue) and another sender: every message deleted stays gone, every one sent or
    announced is there."""
    import moto.sqs.models as sqs_models

    url, local = endpoint
    sqs, s3 = _client(url, "sqs"), _client(url, "s3")
    queue = sqs.create_queue(QueueName=f"inbound-{local}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    bucket = f"mail-{str(local).lower()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    sqs.purge_queue(QueueUrl=queue)  # the test event S3 sends for a new configuration
    for number in range(THREADS * 3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"old {number}")
    handled = []
    while len(handled) < THREADS * 3:
        handled += sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       VisibilityTimeout=300)["Messages"]
    had_handle = sqs_models.Message.had_receipt_handle

    def paused_had_handle(self: Any, handle: str) -> bool:
        time.sleep(PAUSE / 25)  # a delete walks the whole queue, twice
        return bool(had_handle(self, handle))

    monkeypatch.setattr(sqs_models.Message, "had_receipt_handle", paused_had_handle)

    def work(number: int) -> None:
        if number % 4 == 0:
            sqs.send_message(QueueUrl=queue, MessageBody=f"new {number}")
        elif number % 4 == 1:
            s3.put_object(Bucket=bucket, Key=f"object-{number}", Body=b"mail")
        for message in handled[number::THREADS]:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    outcomes = _all_at_once(work)
    assert not local or outcomes == [None] * THREADS, outcomes
    monkeypatch.undo()
    # A message deleted and brought back is in flight (for the 300 s it was received for).
    revived = int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessagesNotVisible"])["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"])
    left: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []):
        left += [_what(message["Body"]) for message in batch]
    expected = sorted([f"new {n}" for n in range(0, THREADS, 4)]
                      + [f"object-{n}" for n in range(1, THREADS, 4)])
    consistent = sorted(left) == expected and revived == 0
    assert consistent is local, f"queued after the deletes: {sorted(left)}, {revived} revived"


def _what(body: str) -> str:
    if body.startswith("{"):
        return unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"])
    return body


def test_a_long_poll_waits_outside_the_lock_for_what_a_send_brings(endpoint):
    url, local = endpoint
    sqs = _client(url, "sqs")
    queue = sqs.create_queue(QueueName=f"polled-{local}")["QueueUrl"]
    polled: list[list[str]] = []
    poll = threading.Thread(target=lambda: polled.append([
        message["Body"] for message in sqs.receive_message(
            QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])]))
    poll.start()
    time.sleep(0.3)  # the poll is waiting
    started = time.monotonic()
    sqs.send_message(QueueUrl=queue, MessageBody="while polling")
    assert time.monotonic() - started < 1.0  # not held up for the poll's 5 s
    poll.join(10)
    assert polled == [["while polling"]]
