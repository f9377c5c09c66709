"""Stored messages: filed once, listed a page at a time (newest first for the API, by UID
for IMAP), changed by versioned transactions that move the folder's counters, MODSEQ and
change log with them, removed for good."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import (
    FOLDER_INDEX,
    INDEX_KEYS,
    UID_INDEX,
    account_pk,
    change_sort_key,
    folder_key,
    folder_partition,
    imap_view_key,
    message_key,
    modseq_of_change,
)
from mailcore.adapters.aws.dynamodb_raw_references import (
    DynamoRawReferences,
    hold_references,
    reference_change,
)
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.folders import (
    FolderState,
    FolderStates,
    change_entry,
    folder_change,
    folder_state,
)
from mailcore.adapters.aws.mailboxes.transactions import (
    ATTEMPTS,
    Cancelled,
    TransactItem,
    back_off,
    version_condition,
)
from mailcore.domain.ids import is_message_id, new_message_id
from mailcore.domain.junk import after_move, copied_into
from mailcore.domain.mailbox import ROLE_FOLDERS, FolderChanges, Page, StoredMessage, UidEntry
from mailcore.errors import FolderNotFound, MessageNotFound, StorageUnavailable

# Filing into one folder takes its turn behind every other change of that folder (the
# MODSEQ condition); parallel deliveries to one mailbox retry more often than one
# user's changes to one message do.
FILING_ATTEMPTS = 4 * ATTEMPTS
HIGHEST_MODSEQ = 10**20 - 1
# Messages filed together in one transaction: each takes three of its 100 items (itself,
# its change entry, its references held) besides the folder's one, and their items
# (estimated by their JSON) stay well within its 4 MB.
ARRIVALS_PER_TRANSACTION = 25
ARRIVAL_BYTES_PER_TRANSACTION = 3_000_000


@dataclass(frozen=True)
class _Arrival:
    index: int  # in what file_together was given
    message: StoredMessage
    holding: int


def _within_transaction_limits(arrivals: list[_Arrival]) -> Iterator[list[_Arrival]]:
    if len(arrivals) == 1:
        yield arrivals  # file(): one message, nothing to share or to measure
        return
    together: list[_Arrival] = []
    size = 0
    for arrival in arrivals:
        item_size = len(json.dumps(codec.message_item(arrival.message, 0)))
        if together and (len(together) == ARRIVALS_PER_TRANSACTION
                         or size + item_size > ARRIVAL_BYTES_PER_TRANSACTION):
            yield together
            together, size = [], 0
        together.append(arrival)
        size += item_size
    if together:
        yield together


class Messages(FolderStates):
    _references: DynamoRawReferences

    def file(self, message: StoredMessage, *, holding: int = 0) -> bool:
        return self.file_together([(message, holding)])[0]

    def file_together(self, arrivals: Sequence[tuple[StoredMessage, int]]) -> list[bool]:
        # Messages for one folder share its read and its write: one transaction makes them
        # all visible, each with its own UID and MODSEQ, and moves the folder's counters
        # once (docs/PERFORMANCE.md 2.2: a transaction bills two units per item, and the
        # folder's item was written once per message).
        filed: dict[int, bool] = {}
        folders: dict[tuple[str, str], list[_Arrival]] = {}
        named: set[tuple[str, str]] = set()
        for index, (message, holding) in enumerate(arrivals):
            if (message.account, message.message_id) in named:
                # Named twice (a notification delivered twice in one batch): the second is
                # a repeat of the first, and one transaction may not write an item twice.
                filed[index] = False
                continue
            named.add((message.account, message.message_id))
            folders.setdefault((message.account, message.folder), []).append(
                _Arrival(index, message, holding))
        for (account, folder_id), waiting in folders.items():
            for together in _within_transaction_limits(waiting):
                filed.update(self._file_in_folder(account, folder_id, together))
        return [filed[index] for index in range(len(arrivals))]

    def _file_in_folder(self, account: str, folder_id: str,
                        arrivals: list[_Arrival]) -> dict[int, bool]:
        """One transaction: the messages appear once each, with the folder's next UIDs, and
        the folder's counters, MODSEQ and change log move with them, or none of it happens.
        A message already filed (a repeated event) cancels it by its own condition; the
        others are then tried again without it."""
        filed: dict[int, bool] = {}
        folder = self._folder_state(account, folder_id)
        for attempt in range(FILING_ATTEMPTS):
            items, message_at = self._arrivals(folder, arrivals)
            try:
                self._transact(items)
            except Cancelled as cancelled:
                if not cancelled.retryable:
                    raise StorageUnavailable("filing failed") from cancelled
                there = [cancelled.failed_condition(at) for at in message_at]
                filed.update((arrival.index, False)
                             for arrival, done in zip(arrivals, there, strict=True) if done)
                arrivals = [arrival for arrival, done in zip(arrivals, there, strict=True)
                            if not done]
                if not arrivals:
                    return filed
                found = cancelled.items[0] if cancelled.failed_condition(0) else {}
                if found:
                    # The folder as the refusal found it: tried again at once, as a fresh
                    # read would be. Pausing first let the writer that won file again
                    # meanwhile, so the state was stale at every try (seen: 32 refusals
                    # in a row).
                    folder = folder_state(account, folder_id, found)
                elif cancelled.failed_condition(0) or not any(there):
                    # A conflict, or a folder gone, tells nothing: wait, then read it.
                    back_off(attempt)
                    folder = self._folder_state(account, folder_id)
                continue
            filed.update((arrival.index, True) for arrival in arrivals)
            return filed
        raise StorageUnavailable("the folder kept changing; filing again later")

    def _arrivals(self, folder: FolderState,
                  arrivals: list[_Arrival]) -> tuple[list[TransactItem], list[int]]:
        """The folder's change, then each message (on the condition that it is new), its
        change entry and, for a message's first copy, its references held; with where in
        the transaction each message's item is."""
        items = [folder_change(self._table, folder, total=len(arrivals),
                               unread=sum(not arrival.message.seen for arrival in arrivals),
                               arrivals=len(arrivals))]
        message_at = []
        for offset, arrival in enumerate(arrivals):
            before = replace(folder, modseq=folder.modseq + offset)
            message = replace(arrival.message, uid=folder.uid_next + offset,
                              modseq=before.next_modseq)
            message_at.append(len(items))
            items += [
                {"Put": {"TableName": self._table, "Item": codec.message_item(message, 0),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                change_entry(self._table, before, message.uid, message.message_id, False),
            ]
            if arrival.holding:
                items.append(hold_references(self._table, message.raw_key, arrival.holding))
        return items, message_at

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
        return codec.page_of(self._query(query, "listing failed"))

    def list_by_uid(self, account: str, folder: str, first_uid: int,
                    limit: int | None = None) -> list[UidEntry]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": UID_INDEX,
            "KeyConditionExpression": "folder_pk = :partition AND #uid >= :first",
            "ProjectionExpression": codec.UID_ENTRY_PROJECTION,
            "ExpressionAttributeNames": codec.UID_ENTRY_NAMES,
            "ExpressionAttributeValues": {":partition": {"S": folder_partition(account, folder)},
                                          ":first": {"N": str(max(first_uid, 1))}},
        }
        # Without a limit, each query reads DynamoDB's whole page (1 MB, some thousands
        # of entries): a smaller Limit would only cost more requests for the same items.
        if limit is not None:
            query["Limit"] = limit
        entries: list[UidEntry] = []
        while True:
            response = self._query(query, "listing by UID failed")
            entries += map(codec.uid_entry, response.get("Items", []))
            # A query stops at 1 MB read whatever its Limit: fewer entries than asked for
            # is the end of the folder only when DynamoDB says so.
            if "LastEvaluatedKey" not in response or (limit is not None
                                                       and len(entries) >= limit):
                return entries[:limit]
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            if limit is not None:
                query["Limit"] = limit - len(entries)

    def changes_since(self, account: str, folder: str, modseq: int,
                      read_highest: int | None = None) -> FolderChanges:
        highest = max(modseq, read_highest if read_highest is not None
                      else self._folder_state(account, folder).modseq)
        latest: dict[int, tuple[str, bool]] = {}  # uid -> (message id, expunged)
        query: dict[str, Any] = {
            "TableName": self._table,
            # Consistent: a change written before this read is in its answer.
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :after AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": account_pk(account)},
                ":after": {"S": change_sort_key(folder, modseq + 1)},
                ":last": {"S": change_sort_key(folder, HIGHEST_MODSEQ)}},
        }
        while True:
            response = self._query(query, "reading changes failed")
            for item in response.get("Items", []):  # in MODSEQ order: the last one counts
                latest[int(item["change_uid"]["N"])] = (item["message_id"]["S"],
                                                        bool(item["expunged"]["BOOL"]))
                highest = max(highest, modseq_of_change(item["sk"]["S"]))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        present = {uid: message_id for uid, (message_id, gone) in latest.items() if not gone}
        # Just what a listing entry holds: the client parses less (on moto, so does the
        # server), though DynamoDB bills the whole item.
        items = self._batch_get([message_key(account, message_id)
                                 for message_id in present.values()], "reading changes failed",
                                projection=(codec.UID_ENTRY_PROJECTION, codec.UID_ENTRY_NAMES))
        changed = [entry for entry in (codec.uid_entry(item) for item in items)
                   if present.get(entry.uid) == entry.message_id]
        return FolderChanges(
            highest_modseq=highest,
            changed=tuple(sorted(changed, key=lambda entry: entry.uid)),
            expunged=tuple(sorted(uid for uid, (_, gone) in latest.items() if gone)),
        )

    def highest_modseq(self, account: str, folder: str) -> int:
        # Eventually consistent (half the read's price) and just the one attribute: this is
        # what every watched folder costs while clients idle on it.
        try:
            item = self._client.get_item(TableName=self._table, Key=folder_key(account, folder),
                                         ProjectionExpression="modseq").get("Item", {})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading folder failed") from exc
        return int(item.get("modseq", {}).get("N", "0"))

    def get(self, account: str, message_id: str) -> StoredMessage:
        return codec.stored_message(self._message_item(account, message_id))

    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        for attempt in range(ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = codec.stored_message(item), codec.version(item)
            changed = after_move(current.folder, change(current), self._clock())
            if changed == current and current.uid:
                return current
            source = self._folder_state(account, current.folder)
            if changed.folder == current.folder and current.uid:
                changed = replace(changed, modseq=source.next_modseq)
                items = [
                    self._put(changed, version),
                    folder_change(self._table, source,
                                  unread=int(not changed.seen) - int(not current.seen)),
                    change_entry(self._table, source, changed.uid, message_id, False),
                ]
            else:
                # A move, or a message filed before folders had UIDs: it becomes visible
                # in its folder now, with that folder's next UID.
                items, changed = self._becoming_visible(current, changed, source, version)
            try:
                self._transact(items)
                return changed
            except Cancelled as cancelled:
                if not cancelled.retryable:
                    raise StorageUnavailable("changing message failed") from cancelled
            back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

    def _becoming_visible(self, current: StoredMessage, changed: StoredMessage,
                          source: FolderState,
                          version: int) -> tuple[list[TransactItem], StoredMessage]:
        moving = changed.folder != current.folder
        target = self._folder_state(current.account, changed.folder) if moving else source
        if not target.exists and target.folder_id not in ROLE_FOLDERS:
            raise FolderNotFound(changed.folder)
        changed = replace(changed, uid=target.uid_next, modseq=target.next_modseq)
        if not moving:
            return [self._put(changed, version),
                    folder_change(self._table, source, arrivals=1,
                                  unread=int(not changed.seen) - int(not current.seen)),
                    change_entry(self._table, source, changed.uid, changed.message_id,
                                 False)], changed
        items = [
            self._put(changed, version),
            folder_change(self._table, source, total=-1, unread=-int(not current.seen)),
            folder_change(self._table, target, total=1, unread=int(not changed.seen),
                          arrivals=1),
            change_entry(self._table, target, changed.uid, changed.message_id, False),
        ]
        if current.uid:
            items.append(change_entry(self._table, source, current.uid, current.message_id,
                                      True))
        return items, changed

    def remove(self, account: str, message_id: str,
               where: tuple[str, int] | None = None) -> tuple[StoredMessage, bool]:
        for attempt in range(ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = codec.stored_message(item), codec.version(item)
            if where is not None and where != (current.folder, current.uid):
                # Moved (or moved back) meanwhile: the delete below is conditioned on the
                # version read here, so it cannot remove a message that moves after this.
                raise MessageNotFound(message_id)
            folder = self._folder_state(account, current.folder)
            items: list[TransactItem] = [
                {"Delete": {"TableName": self._table,
                            "Key": message_key(account, message_id),
                            **version_condition(version)}},
                folder_change(self._table, folder, total=-1, unread=-int(not current.seen)),
                reference_change(self._table, current.raw_key, -1),
                # Its IMAP view goes with it (views.py); none there is no failure.
                {"Delete": {"TableName": self._table,
                            "Key": imap_view_key(account, message_id)}},
            ]
            if current.uid:
                items.append(change_entry(self._table, folder, current.uid, message_id, True))
            try:
                self._transact(items)
                return current, self._references.let_go_if_unreferenced(current.raw_key)
            except Cancelled as cancelled:
                if not cancelled.retryable:
                    raise StorageUnavailable("deleting message failed") from cancelled
            back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

    def copy(self, account: str, message_id: str, folder: str) -> StoredMessage:
        source = self.get(account, message_id)
        copy_id = new_message_id()
        for attempt in range(FILING_ATTEMPTS):
            target = self._folder_state(account, folder)
            if not target.exists and folder not in ROLE_FOLDERS:
                raise FolderNotFound(folder)
            copied = replace(copied_into(source, folder, self._clock()),
                             message_id=copy_id, uid=target.uid_next, modseq=target.next_modseq)
            arrival, _ = self._arrivals(target, [_Arrival(0, copied, 0)])
            try:
                self._transact([
                    *arrival,
                    # The copy's own reference, while the bytes are still there to share.
                    {"Update": {**reference_change(self._table, source.raw_key, 1)["Update"],
                                "ConditionExpression": "attribute_exists(pk) AND "
                                                       "attribute_not_exists(released)"}},
                ])
                return copied
            except Cancelled as cancelled:
                if cancelled.failed_condition(3):
                    raise MessageNotFound(message_id) from cancelled
                if not cancelled.retryable:
                    raise StorageUnavailable("copying message failed") from cancelled
            back_off(attempt)
        raise StorageUnavailable("the folder kept changing; try again")

    def _put(self, message: StoredMessage, version: int) -> TransactItem:
        return {"Put": {"TableName": self._table, "Item": codec.message_item(message, version + 1),
                        **version_condition(version)}}

    def _message_item(self, account: str, message_id: str) -> dict[str, Any]:
        if not is_message_id(message_id):
            raise MessageNotFound(message_id)
        item = self._get_item(message_key(account, message_id), "reading failed")
        if not item:
            raise MessageNotFound(message_id)
        return item
