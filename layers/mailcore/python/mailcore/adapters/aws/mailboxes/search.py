"""Search: a bounded read of the account's messages (or one folder's), newest first,
matching a lowercased field of each; a page may be short while the cursor says more."""

from __future__ import annotations

from typing import Any

from mailcore.adapters.aws.dynamodb_keys import (
    FOLDER_INDEX,
    INDEX_KEYS,
    MESSAGE_PREFIX,
    TABLE_KEYS,
    account_pk,
    folder_partition,
)
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.transactions import Table
from mailcore.domain.mailbox import Page

SEARCH_BUDGET = 500  # items a search request may read


class Search(Table):
    def search(self, account: str, folder: str | None, words: str, limit: int,
               cursor: str | None) -> Page:
        query: dict[str, Any] = {
            "TableName": self._table,
            "ScanIndexForward": False,
            "Limit": SEARCH_BUDGET,
            "FilterExpression": "contains(#search, :words)",
            "ExpressionAttributeNames": {"#search": "search"},
        }
        if folder is None:
            # Message ids are time-ordered, so the table's own sort key is newest first.
            key_names: tuple[str, ...] = TABLE_KEYS
            fixed = {"pk": account_pk(account)}
            query["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :message)"
            query["ExpressionAttributeValues"] = {":pk": {"S": account_pk(account)},
                                                  ":message": {"S": MESSAGE_PREFIX}}
        else:
            partition = folder_partition(account, folder)
            key_names, fixed = INDEX_KEYS, {"folder_pk": partition}
            query["IndexName"] = FOLDER_INDEX
            query["KeyConditionExpression"] = "folder_pk = :partition"
            query["ExpressionAttributeValues"] = {":partition": {"S": partition}}
        query["ExpressionAttributeValues"][":words"] = {"S": words}
        if cursor:
            query["ExclusiveStartKey"] = codec.decode_cursor(cursor, fixed, key_names)
        response = self._query(query, "searching failed")
        items = response.get("Items", [])
        if len(items) > limit:
            # Stop after `limit` matches; the next page starts after the last one shown.
            items = items[:limit]
            last: dict[str, Any] | None = {name: items[-1][name] for name in key_names}
        else:
            last = response.get("LastEvaluatedKey")
        return Page(messages=tuple(codec.stored_message(item) for item in items),
                    cursor=codec.encode_cursor(last) if last else None)
