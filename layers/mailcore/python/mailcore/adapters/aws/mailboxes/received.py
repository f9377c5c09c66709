"""A folder's oldest messages first, up to an instant: on the `by_folder` index, whose sort
key starts with when the message was received, a query reads only the messages it returns
(emptying Junk costs what it removes, not what Junk holds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailcore.adapters.aws.dynamodb_keys import (
    FOLDER_INDEX,
    INDEX_KEYS,
    folder_partition,
    received_sort_key,
)
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.transactions import Table
from mailcore.domain.mailbox import Page


class ReceivedBefore(Table):
    def list_received_before(self, account: str, folder: str, before: datetime, limit: int,
                             cursor: str | None) -> Page:
        partition = folder_partition(account, folder)
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": FOLDER_INDEX,
            # `<received>#` sorts before every message received at that instant.
            "KeyConditionExpression": "folder_pk = :partition AND folder_sk < :before",
            "ExpressionAttributeValues": {
                ":partition": {"S": partition},
                ":before": {"S": received_sort_key(before, "")}},
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = codec.decode_cursor(cursor, {"folder_pk": partition},
                                                             INDEX_KEYS)
        return codec.page_of(self._query(query, "listing old messages failed"))
