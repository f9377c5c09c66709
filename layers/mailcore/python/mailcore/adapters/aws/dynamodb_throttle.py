"""Logins in fixed windows: per address (dynamodb_keys.login_key) and per client address
(dynamodb_keys.login_from_key), shared by every port and every task.

Each login reserves its attempt before its password is checked: one conditional update
(`attempts < limit`) counts it, so twenty simultaneous guesses are counted as they come in
and at most the limit of them are ever checked. `attempts` counts failures and attempts
still being checked (`pending`); a failure leaves its attempt counted, a success or an
abandoned check gives it back. Counted for any address string, hosted or not, so
throttling says nothing about which accounts exist. DynamoDB's TTL removes old windows
(`expires_at`). The edge may touch only these items and the sending counters (its role's
LeadingKeys condition).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import login_from_key, login_key
from mailcore.errors import LoginsInFlight, StorageUnavailable, Throttled
from mailcore.ports import LoginAttempt

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IN_FLIGHT_RETRY_SECONDS = 1
_ATTEMPTS_TO_RESERVE = 4  # rounds of "a new window was started meanwhile"


class DynamoLoginThrottle:
    def __init__(self, client: DynamoDBClient, table: str, max_per_address: int = 5,
                 max_per_client: int = 10, window_seconds: int = 900,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._max_per_address = max_per_address
        self._max_per_client = max_per_client
        self._window = window_seconds
        self._clock = clock

    def reserve(self, address: str, client: str) -> LoginAttempt:
        windows: list[int] = []
        keys = self._keys(address, client)
        try:
            for key, limit in keys:
                windows.append(self._reserve_in(key, limit))
        except Exception:
            # Refused by the client's counter after the address's took it: given back.
            for (key, _), start in zip(keys, windows, strict=False):
                self._give_back(key, start, "ADD attempts :minus_one, pending :minus_one")
            raise
        return LoginAttempt(address, client, tuple(windows))

    def failed(self, attempt: LoginAttempt) -> None:
        for (key, _), start in zip(self._keys(attempt.address, attempt.client),
                                   attempt.windows, strict=False):
            self._give_back(key, start, "ADD pending :minus_one")

    def succeeded(self, attempt: LoginAttempt) -> None:
        keys = self._keys(attempt.address, attempt.client)
        for index, ((key, _), start) in enumerate(zip(keys, attempt.windows, strict=False)):
            if index == 0:
                # The address's failures go; the attempts still being checked stay counted.
                self._give_back(key, start, "SET attempts = pending + :minus_one, "
                                            "pending = pending + :minus_one")
            else:
                self._give_back(key, start, "ADD attempts :minus_one, pending :minus_one")

    def abandoned(self, attempt: LoginAttempt) -> None:
        for (key, _), start in zip(self._keys(attempt.address, attempt.client),
                                   attempt.windows, strict=False):
            self._give_back(key, start, "ADD attempts :minus_one, pending :minus_one")

    def _keys(self, address: str, client: str) -> list[tuple[dict[str, Any], int]]:
        keys = [(login_key(address), self._max_per_address)]
        if client:
            keys.append((login_from_key(client), self._max_per_client))
        return keys

    def _reserve_in(self, key: dict[str, Any], limit: int) -> int:
        """The start of the window this attempt was counted in; Throttled otherwise."""
        try:
            for _ in range(_ATTEMPTS_TO_RESERVE):
                now = int(self._clock())
                cutoff = {"N": str(now - self._window)}
                try:
                    updated = self._client.update_item(
                        TableName=self._table, Key=key,
                        UpdateExpression="ADD attempts :one, pending :one",
                        ConditionExpression="window_start > :cutoff AND attempts < :limit",
                        ExpressionAttributeValues={":one": {"N": "1"}, ":cutoff": cutoff,
                                                   ":limit": {"N": str(limit)}},
                        ReturnValues="ALL_NEW")
                    return int(updated["Attributes"]["window_start"]["N"])
                except ClientError as exc:
                    if not _refused(exc):
                        raise
                item = self._client.get_item(TableName=self._table, Key=key,
                                             ConsistentRead=True).get("Item")
                if item and "attempts" in item and _number(item, "window_start") > int(
                        cutoff["N"]):
                    window_end = _number(item, "window_start") + self._window
                    attempts = _number(item, "attempts")
                    failures = attempts - _number(item, "pending")
                    if failures >= limit:
                        raise Throttled(f"{failures} failed logins", window_end - now)
                    if attempts >= limit:
                        raise LoginsInFlight("the limit is in flight", IN_FLIGHT_RETRY_SECONDS)
                    continue  # given back meanwhile: count again
                # No window yet, or an old one: this attempt starts a new window.
                try:
                    self._client.put_item(
                        TableName=self._table,
                        Item={**key, "attempts": {"N": "1"}, "pending": {"N": "1"},
                              "window_start": {"N": str(now)},
                              "expires_at": {"N": str(now + self._window)}},
                        ConditionExpression="attribute_not_exists(pk) OR window_start <= :cutoff"
                                            " OR attribute_not_exists(attempts)",
                        ExpressionAttributeValues={":cutoff": cutoff})
                    return now
                except ClientError as exc:
                    if not _refused(exc):
                        raise
                    # Another login started the window first: counted in it, next round.
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reserving a login attempt failed") from exc
        raise LoginsInFlight("the counter kept changing", IN_FLIGHT_RETRY_SECONDS)

    def _give_back(self, key: dict[str, Any], start: int, update: str) -> None:
        """`update` on the counter, only in the window the attempt was counted in."""
        try:
            self._client.update_item(
                TableName=self._table, Key=key, UpdateExpression=update,
                ConditionExpression="window_start = :start",
                ExpressionAttributeValues={":start": {"N": str(start)},
                                           ":minus_one": {"N": "-1"}})
        except ClientError as exc:
            if not _refused(exc):  # a later window: this attempt is not in it
                raise StorageUnavailable("counting a login attempt failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("counting a login attempt failed") from exc


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _refused(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
