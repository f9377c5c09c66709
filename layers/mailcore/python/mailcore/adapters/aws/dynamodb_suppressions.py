"""Suppression lists in the mailbox table: one partition per sending domain
(dynamodb_keys.suppressed_key), an item per address. The edge reads them only (its role's
LeadingKeys condition); the deliver function adds, the API lists, adds and removes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import suppressed_key, suppressed_pk
from mailcore.domain.suppression import Suppression, suppression_key
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET = 100  # BatchGetItem's most keys per request


class DynamoSuppressions:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def add(self, domain: str, entry: Suppression) -> None:
        address = suppression_key(entry.address)
        try:
            self._client.put_item(TableName=self._table, Item={
                **suppressed_key(domain, address), "address": {"S": address},
                "reason": {"S": entry.reason}, "since": {"S": entry.since.isoformat()}})
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("adding to the suppression list failed") from exc

    def entries(self, domain: str, of: Sequence[str] | None = None
                ) -> dict[str, Suppression]:
        try:
            items = self._all(domain) if of is None else self._some(domain, of)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("reading the suppression list failed") from exc
        found = {}
        for item in items:
            entry = Suppression(item["address"]["S"], item["reason"]["S"],
                                datetime.fromisoformat(item["since"]["S"]))
            found[entry.address] = entry
        if of is None:
            return found
        # Keyed as asked.
        return {address: found[suppression_key(address)] for address in of
                if suppression_key(address) in found}

    def remove(self, domain: str, address: str) -> bool:
        try:
            answer = self._client.delete_item(
                TableName=self._table, Key=suppressed_key(domain, suppression_key(address)),
                ReturnValues="ALL_OLD")
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("removing from the suppression list failed") from exc
        return bool(answer.get("Attributes"))

    def _all(self, domain: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table, "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": suppressed_pk(domain)}}}
        while True:
            page = self._client.query(**arguments)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _some(self, domain: str, addresses: Sequence[str]) -> list[dict[str, Any]]:
        keys = [suppressed_key(domain, address) for address in
                dict.fromkeys(suppression_key(each) for each in addresses)]
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET):
            wanted: dict[str, Any] = {self._table: {"Keys": keys[start:start + BATCH_GET]}}
            while wanted:
                answer = self._client.batch_get_item(RequestItems=wanted)
                items.extend(answer.get("Responses", {}).get(self._table, []))
                wanted = dict(answer.get("UnprocessedKeys") or {})
        return items
