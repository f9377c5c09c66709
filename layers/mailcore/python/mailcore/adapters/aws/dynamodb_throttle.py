"""Failed logins in fixed windows: per address (pk LOGIN#<address>) and per client
address (pk LOGINFROM#<client>), sk FAILURES, shared by every port and every task.

Counted for any address string, hosted or not, so throttling says nothing about which
accounts exist. DynamoDB's TTL removes old windows (`expires_at`). The edge may touch only
these items and the sending counters (its role's LeadingKeys condition).
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
    def __init__(self, client: DynamoDBClient, table: str, max_per_address: int = 5,
                 max_per_client: int = 10, window_seconds: int = 900,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._limits = {"LOGIN": max_per_address, "LOGINFROM": max_per_client}
        self._window = window_seconds
        self._clock = clock

    def check(self, address: str, client: str) -> None:
        for key, limit in self._keys(address, client):
            try:
                item = self._client.get_item(TableName=self._table, Key=key,
                                             ConsistentRead=True).get("Item")
            except (ClientError, BotoCoreError) as exc:
                raise StorageUnavailable("reading login failures failed") from exc
            if not item:
                continue
            now = int(self._clock())
            window_end = int(item["window_start"]["N"]) + self._window
            if int(item["failures"]["N"]) >= limit and now < window_end:
                raise Throttled(f"{item['failures']['N']} failed logins", window_end - now)

    def failed(self, address: str, client: str) -> None:
        for key, _ in self._keys(address, client):
            self._count_failure(key)

    def succeeded(self, address: str) -> None:
        # The client's failures stay: they may be guesses at other accounts.
        try:
            self._client.delete_item(TableName=self._table, Key=_key("LOGIN", address))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("clearing login failures failed") from exc

    def _keys(self, address: str, client: str) -> list[tuple[dict[str, Any], int]]:
        keys = [(_key("LOGIN", address), self._limits["LOGIN"])]
        if client:
            keys.append((_key("LOGINFROM", client), self._limits["LOGINFROM"]))
        return keys

    def _count_failure(self, key: dict[str, Any]) -> None:
        now = int(self._clock())
        try:
            try:
                self._client.update_item(
                    TableName=self._table, Key=key,
                    UpdateExpression="ADD failures :one",
                    ConditionExpression="window_start > :cutoff",
                    ExpressionAttributeValues={":one": {"N": "1"},
                                               ":cutoff": {"N": str(now - self._window)}})
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                # No window yet, or an old one: this failure starts a new window.
                self._client.put_item(TableName=self._table, Item={
                    **key, "failures": {"N": "1"}, "window_start": {"N": str(now)},
                    "expires_at": {"N": str(now + self._window)}})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("recording login failure failed") from exc


def _key(kind: str, subject: str) -> dict[str, Any]:
    return {"pk": {"S": f"{kind}#{subject.casefold()}"}, "sk": {"S": "FAILURES"}}
