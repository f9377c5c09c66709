"""The local runtime's moto patches: applied only to a moto they were written for, and
undone after a test that wanted them."""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import moto.backends as moto_backends
import moto.core.utils as moto_utils
import moto.sqs.models as sqs_models
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer, XFormedAttributePicker, get_serializer_class
from moto.dynamodb.models import DynamoDBBackend

from mailcore.adapters.aws.dynamodb_keys import FOLDER_PREFIX, account_pk
from mailpipe.local import moto_patches


@pytest.mark.parametrize("version", ["5.0.10", "5.2.5", "5.99.0"])
def test_the_moto_releases_the_patches_know_are_accepted(version):
    moto_patches.check_moto_version(version)


@pytest.mark.parametrize("version", ["4.2.14", "6.0.0", "7.1"])
def test_another_moto_is_refused_with_what_to_do(version):
    with pytest.raises(moto_patches.UnsupportedMoto) as refused:
        moto_patches.check_moto_version(version)
    assert f"moto {version} is installed" in str(refused.value)
    assert "pip install" in str(refused.value)


def test_patches_are_undone_after_the_context():
    original_query = DynamoDBBackend.query
    with moto_patches.patched():
        assert DynamoDBBackend.query is not original_query
        assert DynamoDBBackend.transact_write_items is moto_patches.transact_write_items
    assert DynamoDBBackend.query is original_query
    assert DynamoDBBackend.transact_write_items is not moto_patches.transact_write_items


def test_each_attribute_is_patched_once():
    """A second patch of one attribute would silently drop the first (send_message's
    count-skipping was lost that way behind its lock): they are composed instead."""
    targets = [(id(owner), name) for owner, name, _ in moto_patches._patches()]
    assert len(set(targets)) == len(targets)


# Each patch below has a scenario that shows the defect it fixes. The scenario is run
# against moto as installed (the defect must still be there: when a moto release fixes it,
# that test says the patch can go) and against moto as patched (the defect is gone).

REGION = "us-east-1"
PAUSE_SECONDS = 2.0


@pytest.fixture(params=["as installed", "as patched"])
def patched(request: pytest.FixtureRequest) -> Iterator[bool]:
    with contextlib.ExitStack() as stack:
        if request.param == "as patched":
            stack.enter_context(moto_patches.patched())
        stack.enter_context(mock_aws())
        yield request.param == "as patched"


def _paused_once(owner: Any, name: str, call_number: int, paused: threading.Event,
                 resume: threading.Event) -> Any:
    """Wrap owner.name so that its call_number-th call waits (bounded) once it has run."""
    original = getattr(owner, name)
    calls = itertools.count(1)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if next(calls) == call_number:
            paused.set()
            resume.wait(PAUSE_SECONDS)
        return result

    return wrapper


def _race(first: Callable[[], object], second: Callable[[], object],
          paused: threading.Event, resume: threading.Event) -> object:
    """Run `first` until it pauses inside moto, then `second` beside it; `second`'s result.
    With a lock around both, `second` waits for `first` (which resumes after a bound)."""
    results: dict[str, object] = {}
    one = threading.Thread(target=first)
    one.start()
    assert paused.wait(PAUSE_SECONDS), "the first call never reached the pause"
    two = threading.Thread(target=lambda: results.setdefault("second", second()))
    two.start()
    two.join(PAUSE_SECONDS / 4)
    resume.set()
    one.join(10)
    two.join(10)
    return results["second"]


def test_a_read_never_sees_half_of_an_update(patched: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies an UpdateItem at once; moto clause by clause (the item lock)."""
    from moto.dynamodb.parsing import executors

    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    client.put_item(TableName="t", Item={"pk": {"S": "k"}, "a": {"N": "0"}, "b": {"N": "0"}})
    paused, resume = threading.Event(), threading.Event()
    monkeypatch.setattr(executors.SetExecutor, "execute",
                        _paused_once(executors.SetExecutor, "execute", 1, paused, resume))

    def update() -> None:
        client.update_item(TableName="t", Key={"pk": {"S": "k"}},
                           UpdateExpression="SET a = :one, b = :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})

    def read() -> tuple[str, str]:
        item = client.get_item(TableName="t", Key={"pk": {"S": "k"}})["Item"]
        return item["a"]["N"], item["b"]["N"]

    seen = _race(update, read, paused, resume)
    assert (seen == ("1", "1")) is patched, f"read {seen} mid-update"


def _queue(name: str = "q") -> tuple[Any, Any, str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    client = boto3.client("sqs", region_name=REGION)
    url = client.create_queue(QueueName=name)["QueueUrl"]
    return client, sqs_backends[DEFAULT_ACCOUNT_ID][REGION], url


def test_two_deletes_at_once_both_delete(patched: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's delete rebuilds the queue's message list and assigns it back, so a delete
    that ran meanwhile is undone: its message comes back (the SQS lock)."""
    client, backend, url = _queue()
    client.send_message(QueueUrl=url, MessageBody="first")
    client.send_message(QueueUrl=url, MessageBody="second")
    first, second = client.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    paused, resume = threading.Event(), threading.Event()
    if patched:
        # The patched delete reads a message's handles once: when it has found it, before
        # it takes the message out of the list.
        handles = sqs_models.Message.all_receipt_handles.fget  # type: ignore[attr-defined]
        monkeypatch.setattr(sqs_models.Message, "all_receipt_handles", property(
            _paused_once(type("Handles", (), {"read": staticmethod(handles)}), "read", 1,
                         paused, resume)))
    else:
        # Call 1 finds the first receipt known; call 2 drops its message from the rebuilt list.
        monkeypatch.setattr(sqs_models.Message, "had_receipt_handle", _paused_once(
            sqs_models.Message, "had_receipt_handle", 2, paused, resume))

    _race(lambda: backend.delete_message("q", first["ReceiptHandle"]),
          lambda: backend.delete_message("q", second["ReceiptHandle"]), paused, resume)
    left = [message.body for message in backend.get_queue("q")._messages]
    assert (left == []) is patched, f"deleted, yet still queued: {left}"


def test_a_delete_does_not_walk_the_whole_queue_reading_every_message_s_handles(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto builds every queued message's list of receipt handles, twice over, to delete
    one message: O(backlog) per delete, most of a batch delete's time under load."""
    client, backend, url = _queue()
    for number in range(50):
        client.send_message(QueueUrl=url, MessageBody=str(number))
    [oldest] = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    read = itertools.count()
    handles = sqs_models.Message.all_receipt_handles.fget  # type: ignore[attr-defined]

    def counted(message: Any) -> Any:
        next(read)
        return handles(message)

    monkeypatch.setattr(sqs_models.Message, "all_receipt_handles", property(counted))
    client.delete_message(QueueUrl=url, ReceiptHandle=oldest["ReceiptHandle"])
    assert (next(read) <= 1) is patched
    client.delete_message(QueueUrl=url, ReceiptHandle=oldest["ReceiptHandle"])  # again: no error
    with pytest.raises(client.exceptions.ReceiptHandleIsInvalid):
        client.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    left = sorted(int(message.body) for message in backend.get_queue("q")._messages)
    assert left == [number for number in range(50) if str(number) != oldest["Body"]]


def test_listing_the_waiting_messages_reads_the_clock_once(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto reads the clock twice per queued message to list the visible ones, on every
    receive."""
    client, backend, url = _queue()
    for number in range(50):
        client.send_message(QueueUrl=url, MessageBody=str(number), DelaySeconds=(
            60 if number == 7 else 0))
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=3)  # now in flight
    readings = itertools.count()
    clock = sqs_models.unix_time_millis

    def counted(*args: Any) -> Any:
        next(readings)
        return clock(*args)

    monkeypatch.setattr(sqs_models, "unix_time_millis", counted)
    waiting = backend.get_queue("q").messages
    assert (next(readings) == 1) is patched
    assert sorted(int(message.body) for message in waiting) == [
        number for number in range(3, 50) if number != 7]


def test_a_long_poll_lets_sends_in_and_returns_what_they_sent(patched: bool) -> None:
    """The lock is not held while a receive waits (else a long poll shuts out every send)."""
    client, _, url = _queue()
    polled: list[list[str]] = []
    poll = threading.Thread(target=lambda: polled.append([
        message["Body"] for message in client.receive_message(
            QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])]))
    poll.start()
    started = time.monotonic()
    client.send_message(QueueUrl=url, MessageBody="while polling")
    assert time.monotonic() - started < 1.0  # a send is not held up for the poll's 5 s
    poll.join(10)
    assert polled == [["while polling"]]


def test_sending_and_receiving_do_not_count_the_queue(patched: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """moto counts the whole backlog on every send and every message received (quadratic
    under load); SQS's counts are still answered by GetQueueAttributes."""
    client, _, url = _queue()
    counted = itertools.count()
    original = sqs_models.Queue.approximate_number_of_messages.fget  # type: ignore[attr-defined]

    def counting(self: Any) -> int:
        next(counted)
        return original(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(sqs_models.Queue, "approximate_number_of_messages", property(counting))
    for number in range(5):
        client.send_message(QueueUrl=url, MessageBody=str(number))
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=2)
    assert (next(counted) == 0) is patched
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"],
            attributes["ApproximateNumberOfMessagesNotVisible"]) == ("3", "2")


def test_the_queue_reads_the_plain_clock(patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's SQS reads the time through datetime arithmetic, several times per message on
    every receive; the patched clock gives the same seconds without it."""
    client, _, url = _queue()
    for number in range(5):
        client.send_message(QueueUrl=url, MessageBody=str(number))
    through_datetime = itertools.count()
    original_utcnow = moto_utils.utcnow

    def counting_utcnow() -> Any:
        next(through_datetime)
        return original_utcnow()

    monkeypatch.setattr(moto_utils, "utcnow", counting_utcnow)
    before = time.time()
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=5)
    assert (next(through_datetime) == 0) is patched
    assert abs(sqs_models.unix_time() - before) < 5


def test_the_server_does_not_list_moto_s_folder_per_request(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server lists its package folder on every request to find the service."""
    listed = itertools.count()
    original_listdir = os.listdir

    def counting_listdir(path: Any) -> list[str]:
        next(listed)
        return original_listdir(path)

    expected = sorted(moto_backends.list_of_moto_modules())
    monkeypatch.setattr(os, "listdir", counting_listdir)
    assert sorted(moto_backends.list_of_moto_modules()) == expected
    assert (next(listed) == 0) is patched


def test_a_transaction_does_not_copy_the_tables_it_touches(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto backs up every table a transaction touches with deepcopy: O(table) per
    transaction, quadratic filing. The patch keeps copies of the touched items alone
    (tests/functional/test_moto_transactions.py: still all or nothing)."""
    from moto.dynamodb.models.table import Table

    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    tables_copied = itertools.count()
    original_deepcopy = copy.deepcopy

    def counting_deepcopy(value: Any, *args: Any) -> Any:
        if isinstance(value, Table):
            next(tables_copied)
        return original_deepcopy(value, *args)

    monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "b"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    assert (next(tables_copied) == 0) is patched
    assert client.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"]["n"] == {"N": "1"}


def _messages_table(client: Any) -> None:
    """A table shaped like the mailboxes' (string keys, an index by folder and time), with
    three partitions of mixed sort keys."""
    client.create_table(
        TableName="mail", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                              for name in ("pk", "sk", "folder_pk", "received")],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-folder",
            "KeySchema": [{"AttributeName": "folder_pk", "KeyType": "HASH"},
                          {"AttributeName": "received", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}])
    for account in ("a", "b", "c"):
        for number in range(40):
            item = {"pk": {"S": account_pk(account)}, "sk": {"S": f"MSG#{number:03d}"},
                    "n": {"N": str(number)}}
            if number % 3:  # not every item is in the index
                item["folder_pk"] = {"S": f"{account}#{'inbox' if number % 2 else 'sent'}"}
                item["received"] = {"S": f"2026-12-{number % 28 + 1:02d}T{number:03d}"}
            client.put_item(TableName="mail", Item=item)
        for folder in ("inbox", "sent", "archive"):
            client.put_item(TableName="mail", Item={"pk": {"S": account_pk(account)},
                                                    "sk": {"S": FOLDER_PREFIX + folder}})


_QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {
        ":pk": {"S": account_pk("b")}}},
    {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
     "ExpressionAttributeValues": {":pk": {"S": account_pk("b")}, ":prefix": {"S": FOLDER_PREFIX}}},
    {"KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
     "ExpressionAttributeValues": {":pk": {"S": account_pk("a")}, ":low": {"S": "MSG#010"},
                                   ":high": {"S": "MSG#020"}}, "ScanIndexForward": False},
    {"KeyConditionExpression": "pk = :pk AND sk = :sk", "ExpressionAttributeValues": {
        ":pk": {"S": account_pk("c")}, ":sk": {"S": "MSG#007"}}},
    {"KeyConditionExpression": "pk = :pk AND sk > :sk", "ExpressionAttributeValues": {
        ":pk": {"S": account_pk("c")}, ":sk": {"S": "MSG#030"}}},
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {
        ":pk": {"S": account_pk("nobody")}}},
    {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
     "FilterExpression": "n > :five",
     "ExpressionAttributeValues": {":pk": {"S": account_pk("a")}, ":prefix": {"S": "MSG#0"},
                                   ":five": {"N": "5"}}},
    {"IndexName": "by-folder", "KeyConditionExpression": "folder_pk = :folder",
     "ExpressionAttributeValues": {":folder": {"S": "b#inbox"}}, "ScanIndexForward": False},
    {"IndexName": "by-folder",
     "KeyConditionExpression": "folder_pk = :folder AND received >= :since",
     "ExpressionAttributeValues": {":folder": {"S": "a#sent"},
                                   ":since": {"S": "2026-12-10"}}},
]


def _answers(client: Any) -> list[list[Any]]:
    """Every query's pages (Limit 7, following LastEvaluatedKey), items in order."""
    answers = []
    for query in _QUERIES:
        pages: list[Any] = []
        request = {"TableName": "mail", "Limit": 7, **query}
        while True:
            page = client.query(**request)
            pages.append((page["Items"], page["Count"], page.get("LastEvaluatedKey")))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        answers.append(pages)
    return answers


def test_queries_answer_the_same_patched_or_not() -> None:
    """Table.all_items is narrowed inside a query; moto still applies every condition, so
    each query's pages are what moto as installed gives, item for item."""
    answers = []
    for patching in (contextlib.nullcontext(), moto_patches.patched()):
        with patching, mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            _messages_table(client)
            answers.append(_answers(client))
            # Outside a query (a scan), the whole table, in moto's order.
            answers.append(client.scan(TableName="mail")["Items"])
    as_installed, scan_installed, as_patched, scan_patched = answers
    assert as_patched == as_installed
    assert scan_patched == scan_installed
    assert sum(len(page[0]) for pages in as_installed for page in pages) > 100


def test_a_query_lists_only_the_items_that_can_match(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto lists (and sorts) the whole table for every query: a folder listing read every
    message of every account."""
    from moto.dynamodb.models.table import Table

    client = boto3.client("dynamodb", region_name=REGION)
    _messages_table(client)
    listed: list[int] = []
    all_items = Table.all_items

    def counted(self: Any) -> Any:
        items = all_items(self)
        listed.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", counted)
    folders = client.query(TableName="mail", KeyConditionExpression=(
        "pk = :pk AND begins_with(sk, :prefix)"), ExpressionAttributeValues={
        ":pk": {"S": account_pk("b")}, ":prefix": {"S": FOLDER_PREFIX}})
    inbox = client.query(TableName="mail", IndexName="by-folder",
                         KeyConditionExpression="folder_pk = :folder",
                         ExpressionAttributeValues={":folder": {"S": "b#inbox"}})
    assert folders["Count"] == 3 and inbox["Count"] == 13
    assert listed == ([3, 13] if patched else [129, 129])


def _shape(node: Any) -> Any:
    """A parsed expression as nested tuples of node types and leaf values."""
    children = getattr(node, "children", None)
    if children is None:
        return repr(node)
    return (type(node).__name__, tuple(_shape(child) for child in children))


def test_an_update_expression_is_parsed_once_and_never_changed_by_its_updates(
        patched: bool) -> None:
    """moto parses each Update's expression twice, from its text; patched, once per text.
    Sharing the tree is safe only while moto's validator copies it before resolving names
    and values into it: the tree must look the same after updates that used it."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    expression = "SET #m = :m, v = if_not_exists(v, :v) ADD #t :one"
    tree = UpdateExpressionParser.make(expression)
    before = _shape(tree)
    for key, values in (("a", ("1", "7")), ("a", ("2", "8")), ("b", ("3", "9"))):
        update = {"Key": {"pk": {"S": key}}, "UpdateExpression": expression,
                  "ExpressionAttributeNames": {"#m": "modseq", "#t": "total"},
                  "ExpressionAttributeValues": {":m": {"N": values[0]}, ":v": {"N": values[1]},
                                                ":one": {"N": "1"}}}
        client.update_item(TableName="t", **update)
        client.transact_write_items(TransactItems=[{"Update": {"TableName": "t", **update}}])
    assert (UpdateExpressionParser.make(expression) is tree) is patched
    assert _shape(tree) == before
    items = {item["pk"]["S"]: item for item in client.scan(TableName="t")["Items"]}
    assert items["a"] == {"pk": {"S": "a"}, "modseq": {"N": "2"}, "v": {"N": "7"},
                          "total": {"N": "4"}}
    assert items["b"] == {"pk": {"S": "b"}, "modseq": {"N": "3"}, "v": {"N": "9"},
                          "total": {"N": "2"}}
    with pytest.raises(client.exceptions.ClientError):
        client.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET = x")


_SCALARS = st.one_of(
    st.builds(lambda text: {"S": text}, st.text(max_size=20)),
    st.builds(lambda number: {"N": str(number)}, st.integers() | st.decimals(
        allow_nan=False, allow_infinity=False, places=3)),
    st.builds(lambda data: {"B": data}, st.binary(max_size=20)),
    st.builds(lambda texts: {"SS": texts}, st.lists(st.text(max_size=5), min_size=1,
                                                    unique=True)),
    st.builds(lambda numbers: {"NS": [str(number) for number in numbers]},
              st.lists(st.integers(), min_size=1, unique=True)),
    st.builds(lambda blobs: {"BS": blobs}, st.lists(st.binary(max_size=5), min_size=1,
                                                    unique=True)),
    st.builds(lambda flag: {"BOOL": flag}, st.booleans()),
    st.just({"NULL": True}),
)
_ATTRIBUTE_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    # Names of at least one character, as DynamoDB has them.
    st.builds(lambda members: {"M": members}, st.dictionaries(st.text(min_size=1, max_size=8),
                                                              inner, max_size=4)),
    st.builds(lambda members: {"L": members}, st.lists(inner, max_size=4))), max_leaves=12)
_ITEMS = st.dictionaries(st.text(min_size=1, max_size=8), _ATTRIBUTE_VALUES, max_size=6)


def _query_response_body(items: list[dict[str, Any]]) -> str:
    """A Query's answer as moto's server writes it, from what moto's handler returns (its
    binary values as bytes, as moto.dynamodb.models.utilities.dynamo_to_dict gives them)."""
    service_model = moto_utils.get_service_model("dynamodb")
    serializer = get_serializer_class("dynamodb", service_model.protocol)(
        operation_model=service_model.operation_model("Query"), pretty_print=False,
        value_picker=XFormedAttributePicker(response_transformers=None))
    result = {"Items": items, "Count": len(items), "ScannedCount": len(items),
              "LastEvaluatedKey": items[0] if items else None}
    return str(serializer.serialize(result)["body"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_ITEMS, max_size=4))
def test_items_are_written_as_moto_writes_them(items: list[dict[str, Any]]) -> None:
    as_installed = _query_response_body(items)
    with moto_patches.patched():
        assert _query_response_body(items) == as_installed


def test_an_item_s_attributes_are_not_walked_shape_by_shape(
        patched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    item = {f"attribute{number}": {"M": {"inner": {"S": "text"}, "n": {"N": "1"}}}
            for number in range(20)}
    walked = []
    original = BaseJSONSerializer._serialize_type_string

    def counting(self: Any, *args: Any) -> None:
        walked.append(args)
        original(self, *args)

    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_string", counting)
    _query_response_body([item])
    # As installed: each string of the item (40 of them) went through the shapes.
    assert (len(walked) >= 40) is not patched
