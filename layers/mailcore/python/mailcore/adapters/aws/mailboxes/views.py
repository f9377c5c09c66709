"""IMAP views (mailcore/imap_view) beside the message items: one item per message, written
once when its bytes are and deleted in the transaction that deletes the message
(messages.py). Apart from the message's item because that item is written again on every
flag change and copied whole into the by_folder index (ProjectionType ALL): a view there
would be paid for on every change and every page the API lists. A view too large for an
item goes to an object beside the message's bytes, the item pointing to it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore import s3_keys
from mailcore.adapters.aws.dynamodb_keys import (
    imap_view_key,
    message_id_of_view_key,
    message_key,
)
from mailcore.adapters.aws.mailboxes.transactions import (
    ATTEMPTS,
    Cancelled,
    Table,
    TransactItem,
    back_off,
)
from mailcore.errors import StorageUnavailable
from mailcore.imap_view import view as imap_view
from mailcore.observability import logger
from mailcore.ports import KeptView

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from mailcore.imap_view.view import ImapView

# An item holds at most 400 KB; what is above this goes to S3 (a view this large describes
# thousands of parts: an ordinary message's is about 1 KB compressed).
MAX_VIEW_IN_ITEM = 300 * 1024
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem
TRANSACTION_VIEWS = 50  # views (and their messages' checks) per TransactWriteItems of 100
TRANSACTION_BYTES = 3 * 1024 * 1024  # of views per transaction (DynamoDB's limit: 4 MB)


class DynamoImapViews(Table):
    def __init__(self, client: DynamoDBClient, table: str, s3: S3Client,
                 bucket: str) -> None:
        super().__init__(client, table)
        self._s3 = s3
        self._bucket = bucket

    def put(self, views: Sequence[KeptView], *, if_missing: bool = False) -> None:
        kept = [(each, item) for each in views if (item := self._item(each)) is not None]
        if if_missing:
            # A transaction holds at most 100 items and 4 MB: 50 views, within 3 MiB.
            chunk: list[tuple[KeptView, dict[str, Any]]] = []
            size = 0
            for each, item in kept:
                item_size = len(item.get("view", {}).get("B", b""))
                if chunk and (len(chunk) == TRANSACTION_VIEWS
                              or size + item_size > TRANSACTION_BYTES):
                    self._put_if_missing(chunk)
                    chunk, size = [], 0
                chunk.append((each, item))
                size += item_size
            if chunk:
                self._put_if_missing(chunk)
            return
        items = [item for _, item in kept]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            pending: Any = {self._table: [{"PutRequest": {"Item": item}}
                                          for item in items[start:start + BATCH_WRITE_LIMIT]]}
            for attempt in range(ATTEMPTS):
                try:
                    response = self._client.batch_write_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise StorageUnavailable("keeping IMAP views failed") from exc
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                back_off(attempt)
            else:
                raise StorageUnavailable("keeping IMAP views failed")

    def _put_if_missing(self, kept: list[tuple[KeptView, dict[str, Any]]]) -> None:
        """One transaction for the lot (each view beside a check that its message is
        there); cancelled, one each, those whose condition fails left out."""
        def items(each: KeptView, item: dict[str, Any]) -> list[TransactItem]:
            return [
                {"ConditionCheck": {"TableName": self._table,
                                    "Key": message_key(each.account, each.message_id),
                                    "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {"TableName": self._table, "Item": item,
                         "ConditionExpression": "attribute_not_exists(pk) OR #format <> "
                                                ":format OR #size <> :size",
                         "ExpressionAttributeNames": {"#format": "format", "#size": "size"},
                         "ExpressionAttributeValues": {":format": item["format"],
                                                       ":size": item["size"]}}}]

        try:
            self._transact([entry for each, item in kept for entry in items(each, item)])
            return
        except Cancelled as cancelled:
            if len(kept) == 1 or not cancelled.retryable:
                if cancelled.conditions_failed and cancelled.retryable:
                    return  # the message is gone, or its view is there: nothing to keep
                raise StorageUnavailable("keeping IMAP views failed") from cancelled
        for one in kept:
            self._put_if_missing([one])

    def _item(self, kept: KeptView) -> dict[str, Any] | None:
        encoded = imap_view.encode(kept.view)
        if encoded is None:
            return None  # too large to keep: that message is answered from its bytes
        item: dict[str, Any] = {**imap_view_key(kept.account, kept.message_id),
                                "format": {"N": str(imap_view.FORMAT)},
                                "size": {"N": str(kept.view.size)}}
        if len(encoded) <= MAX_VIEW_IN_ITEM:
            return {**item, "view": {"B": encoded}}
        key = s3_keys.imap_view_object_key(kept.raw_key)
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=encoded,
                                ContentType="application/octet-stream")
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("keeping an IMAP view failed") from exc
        return {**item, "view_object": {"S": key}}

    def forget(self, account: str, message_id: str) -> None:
        try:
            self._client.delete_item(TableName=self._table,
                                     Key=imap_view_key(account, message_id))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("dropping an IMAP view failed") from exc

    def get_many(self, account: str, message_ids: Sequence[str]) -> dict[str, ImapView]:
        # Eventually consistent reads (half the cost): a view written a moment ago and not
        # read yet is made again from the bytes, which gives the same view.
        found: dict[str, ImapView] = {}
        budget = [imap_view.BATCH_VIEW_TEXT]  # decoded text this batch may hold
        keys = [imap_view_key(account, message_id) for message_id in dict.fromkeys(message_ids)]
        for item in self._batch_get(keys, "reading IMAP views failed", consistent=False):
            if item.get("format", {}).get("N") != str(imap_view.FORMAT):
                continue
            encoded = item["view"]["B"] if "view" in item else self._object(item)
            decoded = imap_view.decode(encoded, budget) if encoded is not None else None
            if decoded is not None:
                found[message_id_of_view_key(item["sk"]["S"])] = decoded
        return found

    def _object(self, item: dict[str, Any]) -> bytes | None:
        key = item.get("view_object", {}).get("S")
        if key is None:
            return None
        started = time.monotonic()
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError):
            # Gone with its bytes a moment ago, or unreadable: made again from the bytes.
            logger.warning("IMAP view object unreadable", extra={"key": key})
            return None
        logger.debug("IMAP view read from its object",
                     extra={"key": key, "ms": round((time.monotonic() - started) * 1000)})
        return bytes(body)
