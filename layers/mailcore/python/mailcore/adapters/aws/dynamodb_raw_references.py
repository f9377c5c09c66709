"""Who still needs a message's raw bytes (dynamodb_keys.raw_references_key).

Filing holds every reference a message will have at once, in the transaction that files
its first copy (hold_references): one per mailbox copy (hosted recipients, the Sent copy)
and one per delivery job. A copy
deleted for good, or a job finished, gives its reference back; the one that gives back the
last marks the item released, and only that one deletes the bytes. So no interleaving of
filing, deleting and delivering can delete bytes that a copy still to be filed, or a
delivery still to be attempted, will read.

The released item stays (DynamoDB's TTL removes it after the inbound queue's retention):
a late duplicate notification then finds the message was filed and let go, instead of
failing on missing bytes until it reaches the dead-letter queue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import job_release_key, raw_references_key
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than SQS keeps a notification (14 days), so no duplicate outlives the tombstone.
RELEASED_TTL_SECONDS = 15 * 24 * 3600


def reference_change(table: str, raw_key: str, delta: int) -> dict[str, Any]:
    """A transaction item that moves the count by `delta`, beside the change it counts."""
    return {"Update": {"TableName": table, "Key": raw_references_key(raw_key),
                       "UpdateExpression": "ADD refs :delta",
                       "ExpressionAttributeValues": {":delta": {"N": str(delta)}}}}


def hold_references(table: str, raw_key: str, references: int) -> dict[str, Any]:
    """A transaction item that holds the references unless they are held already (as
    DynamoRawReferences.hold does alone), beside the first copy it is written with."""
    return {"Update": {"TableName": table, "Key": raw_references_key(raw_key),
                       "UpdateExpression": "SET refs = if_not_exists(refs, :references)",
                       "ExpressionAttributeValues": {":references": {"N": str(references)}}}}


class DynamoRawReferences:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def hold(self, raw_key: str, references: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**raw_references_key(raw_key), "refs": {"N": str(references)}},
                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False  # held by an earlier try at filing this message: once only
            raise StorageUnavailable("holding raw message failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("holding raw message failed") from exc
        return True

    def release_job(self, raw_key: str, domain: str) -> bool:
        try:
            self._client.transact_write_items(TransactItems=cast(Any, [
                {"Put": {"TableName": self._table,
                         "Item": {**job_release_key(raw_key, domain),
                                  "expires_at": {"N": str(_expiry())}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                reference_change(self._table, raw_key, -1),
            ]))
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                return False  # this job gave its reference back before
            raise StorageUnavailable("releasing raw message failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("releasing raw message failed") from exc
        return self.let_go_if_unreferenced(raw_key)

    def released(self, raw_key: str) -> bool:
        try:
            item = self._client.get_item(TableName=self._table, Key=raw_references_key(raw_key),
                                         ConsistentRead=True).get("Item", {})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading raw message references failed") from exc
        return "released" in item

    def let_go_if_unreferenced(self, raw_key: str) -> bool:
        """True for the one caller that finds no reference left: it deletes the bytes."""
        try:
            self._client.update_item(
                TableName=self._table, Key=raw_references_key(raw_key),
                UpdateExpression="SET released = :now, expires_at = :expires",
                ConditionExpression="refs <= :zero AND attribute_not_exists(released)",
                ExpressionAttributeValues={":zero": {"N": "0"},
                                           ":now": {"N": str(int(time.time()))},
                                           ":expires": {"N": str(_expiry())}})
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailable("releasing raw message failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("releasing raw message failed") from exc
        return True


def _expiry() -> int:
    return int(time.time()) + RELEASED_TTL_SECONDS


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
