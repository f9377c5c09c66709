"""Reading and writing the table: one place for its calls, all-or-nothing writes, and why
a transaction was cancelled, read from the reasons DynamoDB gives item by item."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# Transaction items are built from parts (conditions, counters), so typed loosely here.
TransactItem = dict[str, Any]
ATTEMPTS = 8  # optimistic retries of a change that another writer got to first
BATCH_GET_LIMIT = 100  # keys per BatchGetItem


class Cancelled(Exception):
    """A cancelled transaction, with the reason of each of its items."""

    def __init__(self, exc: ClientError) -> None:
        super().__init__(str(exc))
        reasons = exc.response.get("CancellationReasons", [])
        self.codes = [str(reason.get("Code") or "None") for reason in reasons]
        # What a failed condition found, for items that ask for it (ALL_OLD).
        self.items: list[dict[str, Any]] = [dict(reason.get("Item") or {}) for reason in reasons]

    def failed_condition(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"

    @property
    def conditions_failed(self) -> bool:
        return "ConditionalCheckFailed" in self.codes

    @property
    def retryable(self) -> bool:
        # Another writer came first (our version condition) or was busy with the same item.
        return all(code in {"None", "ConditionalCheckFailed", "TransactionConflict"}
                   for code in self.codes)


class Table:
    """The table's calls, with AWS's errors as domain errors."""

    def __init__(self, client: DynamoDBClient, table: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._client = client
        self._table = table
        self._clock = clock  # when a moved or copied message entered its folder

    def _get_item(self, key: dict[str, AttributeValueTypeDef], failure: str) -> dict[str, Any]:
        try:
            return dict(self._client.get_item(TableName=self._table, Key=key,
                                              ConsistentRead=True).get("Item", {}))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(failure) from exc

    def _query(self, query: dict[str, Any], failure: str) -> dict[str, Any]:
        try:
            return dict(self._client.query(**query))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(failure) from exc

    def _batch_get(self, keys: list[dict[str, AttributeValueTypeDef]],
                   failure: str, *, consistent: bool = True,
                   projection: tuple[str, dict[str, str]] | None = None
                   ) -> list[dict[str, Any]]:
        """Every item of `keys` that exists, in no particular order; with `projection`
        (an expression and its names), only those attributes of each."""
        found: list[dict[str, Any]] = []
        projected: dict[str, Any] = {} if projection is None else {
            "ProjectionExpression": projection[0], "ExpressionAttributeNames": projection[1]}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            pending: Any = {self._table: {"Keys": keys[start:start + BATCH_GET_LIMIT],
                                          "ConsistentRead": consistent, **projected}}
            for attempt in range(ATTEMPTS):
                try:
                    response = self._client.batch_get_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise StorageUnavailable(failure) from exc
                found += response.get("Responses", {}).get(self._table, [])
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                back_off(attempt)  # throttled: DynamoDB returns what it could not read
            else:
                raise StorageUnavailable(failure)
        return found

    def _transact(self, items: list[TransactItem]) -> None:
        try:
            self._client.transact_write_items(TransactItems=cast(Any, items))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise Cancelled(exc) from exc
            raise StorageUnavailable("transaction failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("transaction failed") from exc


def back_off(attempt: int) -> None:
    # Jitter only spreads retries apart; it needs no secrecy.
    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311


def version_condition(version: int) -> dict[str, Any]:
    condition = "version = :version"
    if version == 0:
        condition = "attribute_not_exists(version) OR " + condition
    return {"ConditionExpression": condition,
            "ExpressionAttributeValues": {":version": {"N": str(version)}}}
