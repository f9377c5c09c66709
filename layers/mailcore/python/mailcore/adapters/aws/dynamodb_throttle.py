"""Failed logins per address (pk LOGIN#<address>, sk FAILURES), in a fixed window.

Counted for any address string, hosted or not, so throttling says nothing about
which accounts exist. DynamoDB's TTL removes old windows (`expires_at`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.errors import StorageUnavailable, Throttled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoLoginThrottle:
    def __init__(self, client: DynamoDBClient, table: str, max_failures: int = 5,
                 window_seconds: int = 900, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._max_failures = max_failures
        self._window = window_seconds
        self._clock = clock

    def check(self, address: str) -> None:
        try:
            item = self._client.get_item(TableName=self._table, Key=_key(address),
                                         ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading login failures failed") from exc
        if not item:
            return
        now = int(self._clock())
        window_end = int(item["window_start"]["N"]) + self._window
        if int(item["failures"]["N"]) >= self._max_failures and now < window_end:
            raise Throttled(f"{item['failures']['N']} failed logins", window_end - now)

    def failed(self, address: str) -> None:
        now = int(self._clock())
        try:
            try:
                self._client.update_item(
                    TableName=self._table, Key=_key(address),
                    UpdateExpression="ADD failures :one",
                    ConditionExpression="window_start > :cutoff",
                    ExpressionAttributeValues={":one": {"N": "1"},
                                               ":cutoff": {"N": str(now - self._window)}})
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                # No window yet, or an old one: this failure starts a new window.
                self._client.put_item(TableName=self._table, Item=_window(address, now,
                                                                          self._window))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("recording login failure failed") from exc

    def succeeded(self, address: str) -> None:
        try:
            self._client.delete_item(TableName=self._table, Key=_key(address))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("clearing login failures failed") from exc


def _key(address: str) -> dict[str, Any]:
    return {"pk": {"S": f"LOGIN#{address.casefold()}"}, "sk": {"S": "FAILURES"}}


def _window(address: str, now: int, window: int) -> dict[str, Any]:
    return {**_key(address), "failures": {"N": "1"}, "window_start": {"N": str(now)},
            "expires_at": {"N": str(now + window)}}
