"""Stored messages: filed once, listed a page at a time, changed by versioned
transactions that move the folder counters with them, removed for good."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences, reference_change
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.folders import count_moves, counter_change
from mailcore.adapters.aws.mailboxes.schema import (
    FOLDER_INDEX,
    INDEX_KEYS,
    folder_partition,
    message_key,
)
from mailcore.adapters.aws.mailboxes.transactions import (
    ATTEMPTS,
    Cancelled,
    Table,
    TransactItem,
    back_off,
    version_condition,
)
from mailcore.domain.ids import is_message_id
from mailcore.domain.mailbox import Page, StoredMessage
from mailcore.errors import FolderNotFound, MessageNotFound, StorageUnavailable


class Messages(Table):
    _references: DynamoRawReferences

    def file(self, message: StoredMessage) -> bool:
        try:
            # One transaction: the message appears once and the folder counts move with it,
            # or neither happens (a repeated event is cancelled by the condition).
            # The raw bytes' reference was held before (RawReferences.hold).
            self._transact([
                {"Put": {"TableName": self._table, "Item": codec.message_item(message, 0),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                counter_change(self._table, message.account, message.folder, 1,
                               0 if message.seen else 1),
            ])
        except Cancelled as cancelled:
            if cancelled.failed_condition(0):
                return False
            raise StorageUnavailable("filing failed") from cancelled
        return True

    def list_folder(self, account: str, folder: str, limit: int, cursor: str | None) -> Page:
        partition = folder_partition(account, folder)
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": FOLDER_INDEX,
            "KeyConditionExpression": "folder_pk = :partition",
            "ExpressionAttributeValues": {":partition": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = codec.decode_cursor(cursor, {"folder_pk": partition},
                                                             INDEX_KEYS)
        response = self._query(query, "listing failed")
        last = response.get("LastEvaluatedKey")
        return Page(
            messages=tuple(codec.stored_message(item) for item in response.get("Items", [])),
            cursor=codec.encode_cursor(last) if last else None,
        )

    def get(self, account: str, message_id: str) -> StoredMessage:
        return codec.stored_message(self._message_item(account, message_id))

    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        for attempt in range(ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = codec.stored_message(item), codec.version(item)
            changed = change(current)
            if changed == current:
                return current
            items: list[TransactItem] = [
                {"Put": {"TableName": self._table,
                         "Item": codec.message_item(changed, version + 1),
                         **version_condition(version)}},
                *count_moves(self._table, current, changed),
            ]
            try:
                self._transact(items)
                return changed
            except Cancelled as cancelled:
                if changed.folder != current.folder and cancelled.failed_condition(2):
                    raise FolderNotFound(changed.folder) from cancelled
                if not cancelled.retryable:
                    raise StorageUnavailable("changing message failed") from cancelled
            back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

    def remove(self, account: str, message_id: str) -> tuple[StoredMessage, bool]:
        for attempt in range(ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = codec.stored_message(item), codec.version(item)
            try:
                self._transact([
                    {"Delete": {"TableName": self._table,
                                "Key": message_key(account, message_id),
                                **version_condition(version)}},
                    counter_change(self._table, account, current.folder, -1,
                                   0 if current.seen else -1),
                    reference_change(self._table, current.raw_key, -1),
                ])
                return current, self._references.let_go_if_unreferenced(current.raw_key)
            except Cancelled as cancelled:
                if not cancelled.retryable:
                    raise StorageUnavailable("deleting message failed") from cancelled
            back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

    def _message_item(self, account: str, message_id: str) -> dict[str, Any]:
        if not is_message_id(message_id):
            raise MessageNotFound(message_id)
        item = self._get_item(message_key(account, message_id), "reading failed")
        if not item:
            raise MessageNotFound(message_id)
        return item
