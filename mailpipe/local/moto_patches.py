"""Fixes to moto for the local runtime's load (2,000 messages took minutes without them).

SQS: moto reads the clock through datetime conversions, several times per message in
the queue on every receive (a receive cost 1.5 s with 2,000 messages waiting); the
plain clock gives the same numbers far faster.

DynamoDB: moto backs up every table a TransactWriteItems touches with copy.deepcopy before it
starts, so each transaction costs O(table size) and filing slows down quadratically
(2,000 messages took minutes). DynamoDB itself evaluates every condition first and
then writes all or nothing, isolated from other transactions; this does the same,
keeping a copy of just the items the transaction touches in case a write fails half-way.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import moto.core.utils as moto_utils
import moto.sqs.models as sqs_models
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

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
_TRANSACTIONS = threading.Lock()


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _TRANSACTIONS:
        _transact_write_items(self, transact_items)


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


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else float(moto_utils.unix_time(dt))


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


def apply() -> None:
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    # moto.sqs.models reads the clock through names it imported from moto.core.utils.
    setattr(sqs_models, "unix_time", _unix_time)  # noqa: B010
    setattr(sqs_models, "unix_time_millis", _unix_time_millis)  # noqa: B010
