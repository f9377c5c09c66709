"""Folders: role folders (made by their first message) and the account's own, with unique
names and counters that move in the same transaction as the messages they count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.schema import account_pk, folder_key, folder_name_key
from mailcore.adapters.aws.mailboxes.transactions import Cancelled, Table, TransactItem
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    ROLE_FOLDERS,
    Folder,
    StoredMessage,
    role_folder_id,
)
from mailcore.errors import Conflict, FolderNotFound, InvalidRequest, StorageUnavailable

MAX_RENAMED_FOLDERS = 33  # three transaction items each, within DynamoDB's 100


def counter_change(table: str, account: str, folder: str, total: int,
                   unread: int) -> TransactItem:
    update: dict[str, Any] = {
        "TableName": table,
        "Key": folder_key(account, folder),
        "UpdateExpression": "ADD #total :total, #unread :unread",
        "ExpressionAttributeNames": {"#total": "total", "#unread": "unread"},
        "ExpressionAttributeValues": {":total": {"N": str(total)},
                                      ":unread": {"N": str(unread)}},
    }
    if folder in ROLE_FOLDERS:
        # Role folders come into being with their first message.
        update["UpdateExpression"] = "SET folder_name = :name " + update["UpdateExpression"]
        update["ExpressionAttributeValues"][":name"] = {"S": folder}
    else:
        # A user folder must still exist: a move into a deleted one fails.
        update["ConditionExpression"] = "attribute_exists(pk)"
    return {"Update": update}


def count_moves(table: str, before: StoredMessage,
                after: StoredMessage) -> Iterable[TransactItem]:
    unread_before, unread_after = int(not before.seen), int(not after.seen)
    if before.folder == after.folder:
        if unread_after != unread_before:
            yield counter_change(table, after.account, after.folder, 0,
                                 unread_after - unread_before)
        return
    yield counter_change(table, before.account, before.folder, -1, -unread_before)
    yield counter_change(table, after.account, after.folder, 1, unread_after)


class Folders(Table):
    def folders(self, account: str) -> list[Folder]:
        response = self._query({
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :folder)",
            "ExpressionAttributeValues": {":pk": {"S": account_pk(account)},
                                          ":folder": {"S": "FOLDER#"}},
        }, "listing folders failed")
        found = (codec.folder(item) for item in response.get("Items", []))
        return [folder for folder in found if folder is not None]

    def folder_named(self, account: str, name: str) -> Folder:
        role_id = role_folder_id(name)
        if role_id is not None:
            item = self._get_item(folder_key(account, role_id), "reading folder failed")
            return codec.folder(item) or Folder(role_id, role_id, ROLE_FOLDERS[role_id], 0, 0)
        name_item = self._get_item(folder_name_key(account, name), "reading folder failed")
        folder_id = name_item.get("folder_id", {}).get("S")
        item = self._get_item(folder_key(account, folder_id),
                              "reading folder failed") if folder_id else {}
        folder = codec.folder(item, name)
        if folder is None:
            raise FolderNotFound(name)
        return folder

    def create_folder(self, account: str, name: str) -> Folder:
        folder_id = new_message_id()
        try:
            self._transact([
                {"Put": {"TableName": self._table,
                         "Item": {**folder_name_key(account, name),
                                  "folder_id": {"S": folder_id}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table,
                         "Item": {**folder_key(account, folder_id),
                                  "folder_name": {"S": name}, "total": {"N": "0"},
                                  "unread": {"N": "0"}}}},
            ])
        except Cancelled as cancelled:
            if cancelled.failed_condition(0):
                raise Conflict(f"a folder named {name!r} exists") from cancelled
            raise StorageUnavailable("creating folder failed") from cancelled
        return Folder(folder_id, name, None, 0, 0)

    def rename_folder(self, account: str, folder: Folder, new_name: str) -> Folder:
        prefix = folder.name + FOLDER_SEPARATOR
        # Folders under it move with it, as IMAP's RENAME moves inferior names.
        moving = [folder] + [other for other in self.folders(account)
                             if other.role is None and other.name.startswith(prefix)]
        if len(moving) > MAX_RENAMED_FOLDERS:
            raise InvalidRequest(f"a folder with more than {MAX_RENAMED_FOLDERS - 1} "
                                 "folders under it cannot be renamed at once", "name")
        items: list[TransactItem] = []
        for moved in moving:
            target = new_name + moved.name[len(folder.name):]
            items += [
                {"Update": {"TableName": self._table, "Key": folder_key(account, moved.id),
                            "UpdateExpression": "SET folder_name = :new",
                            "ConditionExpression": "folder_name = :old",
                            "ExpressionAttributeValues": {":new": {"S": target},
                                                          ":old": {"S": moved.name}}}},
                {"Delete": {"TableName": self._table,
                            "Key": folder_name_key(account, moved.name),
                            "ConditionExpression": "folder_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": moved.id}}}},
                {"Put": {"TableName": self._table,
                         "Item": {**folder_name_key(account, target),
                                  "folder_id": {"S": moved.id}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        try:
            self._transact(items)
        except Cancelled as cancelled:
            if any(cancelled.failed_condition(index) for index in range(2, len(items), 3)):
                raise Conflict(f"a folder named {new_name!r} exists") from cancelled
            if cancelled.conditions_failed:
                raise Conflict("the folder changed meanwhile; try again") from cancelled
            raise StorageUnavailable("renaming folder failed") from cancelled
        return replace(folder, name=new_name)

    def delete_folder(self, account: str, folder: Folder) -> None:
        try:
            self._transact([
                {"Delete": {"TableName": self._table, "Key": folder_key(account, folder.id),
                            "ConditionExpression": "attribute_exists(pk) AND #total = :zero",
                            "ExpressionAttributeNames": {"#total": "total"},
                            "ExpressionAttributeValues": {":zero": {"N": "0"}}}},
                {"Delete": {"TableName": self._table,
                            "Key": folder_name_key(account, folder.name),
                            "ConditionExpression": "folder_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": folder.id}}}},
            ])
        except Cancelled as cancelled:
            if cancelled.conditions_failed:
                raise Conflict("only an empty folder can be deleted") from cancelled
            raise StorageUnavailable("deleting folder failed") from cancelled
