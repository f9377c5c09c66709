"""Fixes to moto for the local runtime's load (2,000 messages took minutes without them).

SQS: moto reads the clock through datetime conversions, several times per message in
the queue on every receive (a receive cost 1.5 s with 2,000 messages waiting); the
plain clock gives the same numbers far faster.

DynamoDB: moto backs up every table a TransactWriteItems touches with copy.deepcopy before it
starts, so each transaction costs O(table size) and filing slows down quadratically
(2,000 messages took minutes). DynamoDB itself evaluates every condition first and
then writes all or nothing, isolated from other transactions; this does the same,
keeping a copy of just the items the transaction touches in case a write fails half-way.
Every other item call and query is atomic too, as in DynamoDB.

Each patch has a test in tests/unit/test_moto_patches.py that shows its defect on moto as
installed and its absence on moto as patched: when a moto release fixes one, its
"as installed" case fails and says the patch can go.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import inspect
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import moto.backends as moto_backends
import moto.core.utils as moto_utils
import moto.sqs.models as sqs_models
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
    UpdateExpressionParser,
)
from moto.sqs.exceptions import ReceiptHandleIsInvalid

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def _key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


# moto's server answers requests on many threads; DynamoDB transactions are serializable,
# so here one runs at a time (otherwise two could pass the same condition, then both write).
# Single-item calls and queries take the same lock: DynamoDB applies an item's update at
# once, where moto applies its clauses one by one (a reader saw a folder's counters before
# its name), and a query walking a table while another thread adds an item raised
# "dictionary changed size during iteration" (tests/functional/test_fresh_account_race.py).
_TABLES = threading.RLock()
_TABLE_CALLS = ("put_item", "get_item", "update_item", "delete_item", "query", "scan")


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _TABLES:
        _transact_write_items(self, transact_items)


def _one_at_a_time(operation: Any) -> Any:
    def one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _TABLES:
            return operation(self, *args, **kwargs)

    return one_at_a_time


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned = []
    seen: set[tuple[str, str]] = set()
    errors: list[Any] = []
    for item in transact_items:
        if len(item) != 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        key = _key(self, op_type, op)
        identity = (op["TableName"], str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        current = self.get_item(op["TableName"], key)
        failure: Any = (None, None, None)
        expression = op.get("ConditionExpression")
        if expression is not None and not get_filter_expression(
            expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old = (current.to_json()["Attributes"]
                   if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                   else None)
            failure = ("ConditionalCheckFailed", str(ConditionalCheckFailed(item=old).message),
                       old)
        errors.append(failure)
        planned.append((op_type, op, key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    applied = []
    try:
        for op_type, op, key, before in planned:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 condition_expression=None, expression_attribute_names=names,
                                 expression_attribute_values=values)
            applied.append((op["TableName"], key, before))
    except Exception:
        for table_name, key, before in reversed(applied):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


# moto answers every query from Table.all_items, which lists the whole table and sorts
# it item by item on DynamoType comparisons; the query then keeps the partition it was
# asked for and sorts that again. So each query cost O(table log table) where DynamoDB
# reads the partition: with 20,000 items in an account's partition (10,000 messages and
# their changes), listing its folders (a begins_with on the partition) took 0.3-0.4 s of the
# server's one interpreter, 33 ms patched; the load tests poll that listing every half
# second while they file. Inside a query, all_items gives only the
# items that can match, unsorted: a table query's partition, and of it the sort keys that
# pass a string key condition; an index query's items whose index hash key matches. moto
# still applies every condition and sorts what is left, so answers are unchanged
# (tests/unit/test_moto_patches.py compares them query by query); its sort of an index
# query's items is patched too (below).
_QUERYING = threading.local()
_original_table_query = Table.query
_QUERY_SIGNATURE = inspect.signature(_original_table_query)
_original_all_items = Table.all_items
_STRING_TESTS = {
    "BEGINS_WITH": lambda key, values: key.startswith(values[0]),
    "BETWEEN": lambda key, values: values[0] <= key <= values[1],
    # moto's parser gives "=" for equality (KeyConditions' EQ included).
    "=": lambda key, values: key == values[0],
}


def _table_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    call = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    outer = getattr(_QUERYING, "scope", None)
    _QUERYING.scope = (self, call)
    try:
        return _original_table_query(self, *args, **kwargs)
    finally:
        _QUERYING.scope = outer


def _sort_key_value(item: Any) -> Any:
    return item.range_key.cast_value


def _sorted_items(self: Table, hash_key_attrs: list[str], range_key_attrs: list[str | None],
                  items: list[Any]) -> list[Any]:
    # As moto sorts an index query's items, by the same attributes, on values computed once
    # per item: its key compared DynamoType objects, which convert both values (a Decimal
    # for every number) at every comparison.
    attributes = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in attributes))
    return items


def _equal(found: Any, wanted: Any) -> bool:
    return found is not None and bool(found == wanted)


def _all_items(self: Table) -> Any:
    scope = getattr(_QUERYING, "scope", None)
    if scope is None or scope[0] is not self:
        return _original_all_items(self)
    call = scope[1]
    if call.get("index_name"):
        conditions = call.get("hash_key_conditions") or []
        if not conditions:
            return _original_all_items(self)
        return [item for partition in self.items.values()
                for item in (partition.values() if self.range_key_attr else [partition])
                if all(_equal(item.attrs.get(name), value) for name, value in conditions)]
    hash_key = call.get("hash_key")
    if hash_key is None:
        return _original_all_items(self)
    partition = self.items.get(hash_key)
    if partition is None:
        return []
    if not self.range_key_attr:
        return [partition]
    items: list[Any] = list(partition.values())
    test = _STRING_TESTS.get((call.get("range_comparison") or "").upper())
    values = call.get("range_objs") or []
    on_sort_key = all(name == self.range_key_attr
                      for name, _, _ in call.get("range_key_conditions") or [])
    if test is not None and on_sort_key and values and all(v.type == "S" for v in values):
        wanted = [value.value for value in values]
        items = [item for item in items
                 if item.range_key is not None and item.range_key.type == "S"
                 and test(item.range_key.value, wanted)]
    # Given in order, moto's own sort of them is one pass of comparisons.
    return sorted(items, key=_sort_key_value)


# moto's send_message and receive_message (once per message received) read a single
# attribute of the queue through Queue.attributes, which counts the queue's messages
# three times over (visible, in flight, delayed): O(backlog) per message, quadratic
# under load (10,000 messages took 13 minutes). Inside those two calls the counts are
# left out; GetQueueAttributes still has them.
_SENDING = threading.local()
_COUNTED = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible"}
_original_attributes = sqs_models.Queue.attributes.fget  # type: ignore[attr-defined]
_original_send_message = sqs_models.SQSBackend.send_message
_original_receive_message = sqs_models.SQSBackend.receive_message


@functools.cache
def _field_name(attribute: str) -> str:
    # moto converts each name with regular expressions, every time: receiving a message
    # asks for the queue's retention period, so the conversions were a twentieth of the
    # time of the process serving moto under the filing bench (py-spy).
    return str(moto_utils.camelcase_to_underscores(attribute))


def _attributes(self: Any) -> dict[str, Any]:
    if not getattr(_SENDING, "active", False):
        return _original_attributes(self)  # type: ignore[no-any-return]
    names = [name for name in type(self).BASE_ATTRIBUTES if name not in _COUNTED]
    if self.fifo_queue:
        names += type(self).FIFO_ATTRIBUTES
    values = {name: getattr(self, _field_name(name)) for name in names}
    return {name: str(value).lower() if isinstance(value, bool) else value
            for name, value in values.items()}


def _without_counts(operation: Any) -> Any:
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        _SENDING.active = True
        try:
            return operation(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    return patched


# moto's SQS is not safe across the server's threads: Queue.delete_message rebuilds the
# message list and assigns it back, so two deletes at once bring a deleted message back
# and a send during a delete is lost. SQS itself is atomic per call; so is this.
_QUEUES = threading.RLock()
_SERIALISED = ("send_message", "send_message_batch", "delete_message",
               "delete_message_batch", "change_message_visibility",
               "change_message_visibility_batch", "purge_queue", "get_queue_attributes")


def _serialised(operation: Any) -> Any:
    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _QUEUES:
            return operation(self, *args, **kwargs)

    return serialised


def _delete_message(self: Any, receipt_handle: str) -> None:
    # moto walks the whole queue twice per deleted message, building a list of every
    # message's receipt handles at each step: with thousands waiting (the edge accepts
    # faster than the local runtime files), deletes took a seventh of the server's sampled
    # time in the 10,000-message load test. One walk that stops at the message,
    # with the same outcomes: a repeated delete is ignored, an unknown handle refused.
    if receipt_handle in self.deleted_messages:
        return
    position = next((index for index, message in enumerate(self._messages)
                     if message.receipt_handle == receipt_handle
                     or receipt_handle in message._old_receipt_handles), None)
    if position is None:
        raise ReceiptHandleIsInvalid()
    message = self._messages[position]
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)
    self._messages = self._messages[:position] + self._messages[position + 1:]


def _waiting_messages(self: Any) -> list[Any]:
    # What Queue.messages gives (visible, not delayed), reading the clock once for the
    # listing instead of twice per queued message: every receive lists the whole queue.
    now = sqs_models.unix_time_millis()  # type: ignore[attr-defined]
    return [message for message in self._messages
            if now > message.visible_at and not now < message.delayed_until]


_receive_once = _without_counts(_original_receive_message)


def _receive(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
             *args: Any, **kwargs: Any) -> Any:
    # A long poll waits outside the lock, asking again every 100 ms, so that sends
    # (which the poll waits for) are not shut out.
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with _QUEUES:
            result = _receive_once(self, queue_name, count, 0, *args, **kwargs)
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.1)


# moto's JSON responses walk the service model's shapes value by value: for DynamoDB every
# attribute of every item returned went through a shape lookup, an attribute picker and a
# wrapper dict (a list page of 100 messages, 0.8 s of 1.3 s under cProfile; 8% of moto's
# DynamoDB process when filing). An AttributeValue is already its own JSON once its
# binary values are base64: written here as moto's serializer writes it (its own base64),
# which tests/unit/test_moto_patches.py checks against moto's on every kind of value.
_original_json_structure = BaseJSONSerializer._serialize_type_structure


_ATTRIBUTE_VALUE_SERVICES = {"dynamodb", "dynamodbstreams"}


def _json_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if (shape.name == "AttributeValue" and key and isinstance(value, dict)
            and self.operation_model.service_model.service_name
            in _ATTRIBUTE_VALUE_SERVICES):
        self._default_serialize(serialized, _attribute_value(self, value), shape, key)
        return
    _original_json_structure(self, serialized, value, shape, key)


def _attribute_value(serializer: Any, value: dict[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            continue  # as moto's serializer leaves out a member that has no value
        if kind == "B":
            wire[kind] = serializer._base64(inner)
        elif kind == "BS":
            wire[kind] = [serializer._base64(member) for member in inner]
        elif kind == "M":
            wire[kind] = {name: _attribute_value(serializer, member)
                          for name, member in inner.items()}
        elif kind == "L":
            wire[kind] = [_attribute_value(serializer, member) for member in inner]
        elif kind in ("SS", "NS"):
            wire[kind] = [str(member) for member in inner]
        elif kind in ("S", "N"):
            wire[kind] = str(inner)
        else:  # BOOL, NULL
            wire[kind] = inner
    return wire


# moto parses every update expression twice per Update (the request's validation, then
# update_item), each time from its text: a seventh of the process serving moto when filing
# (py-spy), for the same few expressions again and again. The tree is only read: the
# validator that applies it works on its own deep copy (moto.dynamodb.parsing.validators.
# Validator.__init__), which tests/unit/test_moto_patches.py checks. Invalid expressions
# raise and are not cached.
_original_make = UpdateExpressionParser.make.__func__


@functools.lru_cache(maxsize=512)
def _parsed_update_expression(expression: str) -> Any:
    return _original_make(UpdateExpressionParser, expression)


def _make_update_expression(cls: Any, expression: str) -> Any:
    return _parsed_update_expression(expression)


# moto's server finds the service of every request by listing its own package folder
# (a directory scan per request); the list never changes while it runs.
_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())


def _list_of_moto_modules() -> tuple[str, ...]:
    return _MOTO_MODULES


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else float(moto_utils.unix_time(dt))


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


# The moto releases these patches were written against and tested with: they replace moto
# internals (DynamoDBBackend's methods, SQS's Queue.attributes, moto.backends' module list),
# which another release may rename or rework.
SUPPORTED_MOTO = ((5, 0), (5, 99))


class UnsupportedMoto(RuntimeError):
    pass


def check_moto_version(version: str | None = None) -> None:
    """Refuse to patch a moto these patches were not written for, saying what to do."""
    found = version or importlib.metadata.version("moto")
    numbers = tuple(int(part) for part in re.findall(r"\d+", found)[:2])
    low, high = SUPPORTED_MOTO
    if not low <= numbers <= high:
        raise UnsupportedMoto(
            f"moto {found} is installed; mailpipe's local runtime patches moto "
            f"{low[0]}.{low[1]} to {high[0]}.x (mailpipe/local/moto_patches.py). Install a "
            f"supported moto (pip install 'moto[server]>=5.0.10,<6'), or check the patches "
            f"against this release and widen SUPPORTED_MOTO.")


def _patches() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, replacement) for every patch, one per attribute: where two
    patches meet on one method they are composed (send_message skips the counts and is
    serialised), since a second setattr would drop the first."""
    sqs_backend = sqs_models.SQSBackend
    sqs_methods: dict[str, Any] = {name: getattr(sqs_backend, name) for name in _SERIALISED}
    sqs_methods["send_message"] = _without_counts(_original_send_message)
    patches: list[tuple[Any, str, Any]] = [
        (DynamoDBBackend, "transact_write_items", transact_write_items),
        (Table, "query", _table_query),
        (Table, "all_items", _all_items),
        (Table, "sorted_items", _sorted_items),
        (UpdateExpressionParser, "make", classmethod(_make_update_expression)),
        (BaseJSONSerializer, "_serialize_type_structure", _json_structure),
        (moto_backends, "list_of_moto_modules", _list_of_moto_modules),
        (sqs_models.Queue, "attributes", property(_attributes)),
        (sqs_models.Queue, "delete_message", _delete_message),
        (sqs_models.Queue, "messages", property(_waiting_messages)),
        (sqs_backend, "receive_message", _receive),
        # moto.sqs.models reads the clock through names it imported from moto.core.utils.
        (sqs_models, "unix_time", _unix_time),
        (sqs_models, "unix_time_millis", _unix_time_millis),
    ]
    for name in _TABLE_CALLS:
        patches.append((DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name))))
    for name, method in sqs_methods.items():
        patches.append((sqs_backend, name, _serialised(method)))
    return patches


_applied: list[tuple[Any, str, Any]] = []  # (owner, attribute, original) while applied


def apply() -> None:
    """Patch moto for the rest of the process (the local runtime's moto server)."""
    if _applied:
        return
    check_moto_version()
    for owner, name, replacement in _patches():
        _applied.append((owner, name, owner.__dict__.get(name, getattr(owner, name))))
        setattr(owner, name, replacement)


def undo() -> None:
    while _applied:
        owner, name, original = _applied.pop()
        setattr(owner, name, original)


@contextmanager
def patched() -> Iterator[None]:
    """moto as the local runtime runs it, for the duration (tests and benchmarks)."""
    was_applied = bool(_applied)
    apply()
    try:
        yield
    finally:
        if not was_applied:
            undo()
