"""Folders: role folders (made by their first message) and the account's own, with unique
names and counters that move in the same transaction as the messages they count."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import (
    FOLDER_PREFIX,
    account_pk,
    change_key,
    folder_key,
    folder_name_key,
)
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.transactions import Cancelled, Table, TransactItem
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    ROLE_FOLDERS,
    Folder,
    new_uid_validity,
    role_folder_id,
)
from mailcore.errors import Conflict, FolderNotFound, InvalidRequest, StorageUnavailable

MAX_RENAMED_FOLDERS = 33  # three transaction items each, within DynamoDB's 100


@dataclass(frozen=True)
class FolderState:
    """A folder's IMAP counters as read before a change. The change is written only while
    the folder's MODSEQ is still this one, so changes to one folder are applied one after
    another: a UID is handed out in the very write that makes its message visible, and
    no message can become visible later with a lower one (RFC 3501 2.3.1.1)."""

    account: str
    folder_id: str
    exists: bool
    modseq: int
    uid_next: int
    # The item already has what a folder's first change gives it (its UIDVALIDITY, and a
    # role folder's name), and a MODSEQ that the change's condition pins it to: the change
    # need not write them again.
    settled: bool = False

    @property
    def next_modseq(self) -> int:
        return self.modseq + 1


def folder_change(table: str, state: FolderState, *, total: int = 0, unread: int = 0,
                  arrivals: int = 0) -> TransactItem:
    """The folder's side of a change: its MODSEQ advanced (and counters moved), on the
    condition that nobody else changed it since `state` was read. `arrivals` messages
    made visible take the next UIDs and MODSEQs, one each (each has its change entry,
    and a change entry is keyed by its MODSEQ)."""
    names = {"#total": "total", "#unread": "unread", "#modseq": "modseq"}
    values: dict[str, Any] = {":total": {"N": str(total)}, ":unread": {"N": str(unread)},
                              ":modseq": {"N": str(state.modseq + max(1, arrivals))},
                              ":seen": {"N": str(state.modseq)}}
    assignments = ["#modseq = :modseq"]
    if not state.settled:
        assignments.append("uid_validity = if_not_exists(uid_validity, :validity)")
        values[":validity"] = {"N": str(new_uid_validity())}
    if arrivals:
        assignments.append("uid_next = :uid_next")
        values[":uid_next"] = {"N": str(state.uid_next + arrivals)}
    condition = "#modseq = :seen"
    if state.modseq == 0:
        condition = "(attribute_not_exists(#modseq) OR #modseq = :seen)"
    if state.folder_id in ROLE_FOLDERS:
        # Role folders come into being with their first message.
        if not state.settled:
            assignments.append("folder_name = :name")
            values[":name"] = {"S": state.folder_id}
    else:
        # A user folder must still exist: a move into a deleted one fails.
        condition += " AND attribute_exists(pk)"
    return {"Update": {
        "TableName": table,
        "Key": folder_key(state.account, state.folder_id),
        "UpdateExpression": f"SET {', '.join(assignments)} ADD #total :total, #unread :unread",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        # Whoever loses the race for the folder learns its new state from the refusal
        # itself (CancellationReasons[i].Item) instead of reading the item again.
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }}


def change_entry(table: str, state: FolderState, uid: int, message_id: str,
                 expunged: bool) -> TransactItem:
    """The folder's change log: this UID changed (or went) at the folder's next MODSEQ."""
    return {"Put": {"TableName": table, "Item": {
        **change_key(state.account, state.folder_id, state.next_modseq),
        "change_uid": {"N": str(uid)},
        "message_id": {"S": message_id},
        "expunged": {"BOOL": expunged},
    }}}


def folder_state(account: str, folder_id: str, item: dict[str, Any]) -> FolderState:
    """The state a folder item records; an empty item is a folder not made yet."""
    folder = codec.folder(item, "")
    if folder is None:
        return FolderState(account, folder_id, exists=bool(item), modseq=0, uid_next=1)
    # Pinned only by a MODSEQ above 0: the condition for 0 also passes on no item at all
    # (one deleted since this read), which the change would then make without them.
    settled = (folder.highest_modseq > 0 and folder.uid_validity > 0
               and (folder_id not in ROLE_FOLDERS or "folder_name" in item))
    return FolderState(account, folder_id, exists=True, modseq=folder.highest_modseq,
                       uid_next=folder.uid_next, settled=settled)


class FolderStates(Table):
    def _folder_state(self, account: str, folder_id: str) -> FolderState:
        return folder_state(account, folder_id,
                            self._get_item(folder_key(account, folder_id),
                                           "reading folder failed"))


class Folders(FolderStates):
    def folders(self, account: str) -> list[Folder]:
        response = self._query({
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :folder)",
            "ExpressionAttributeValues": {":pk": {"S": account_pk(account)},
                                          ":folder": {"S": FOLDER_PREFIX}},
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

    def folder_by_id(self, account: str, folder_id: str) -> Folder:
        item = self._get_item(folder_key(account, folder_id), "reading folder failed")
        folder = codec.folder(item)
        if folder is None:
            if folder_id not in ROLE_FOLDERS:
                raise FolderNotFound(folder_id)
            return Folder(folder_id, folder_id, ROLE_FOLDERS[folder_id], 0, 0)
        return folder

    def create_folder(self, account: str, name: str) -> Folder:
        # A new id and a new UIDVALIDITY: a folder made again under an old name is another
        # folder to a client that knew the old one.
        folder_id, uid_validity = new_message_id(), new_uid_validity()
        try:
            self._transact([
                {"Put": {"TableName": self._table,
                         "Item": {**folder_name_key(account, name),
                                  "folder_id": {"S": folder_id}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table,
                         "Item": {**folder_key(account, folder_id),
                                  "folder_name": {"S": name}, "total": {"N": "0"},
                                  "unread": {"N": "0"},
                                  "uid_validity": {"N": str(uid_validity)},
                                  "uid_next": {"N": "1"}, "modseq": {"N": "0"}}}},
            ])
        except Cancelled as cancelled:
            if cancelled.failed_condition(0):
                raise Conflict(f"a folder named {name!r} exists") from cancelled
            raise StorageUnavailable("creating folder failed") from cancelled
        return Folder(folder_id, name, None, 0, 0, uid_validity=uid_validity)

    def open_folder(self, account: str, folder_id: str) -> Folder:
        values: dict[str, Any] = {":validity": {"N": str(new_uid_validity())},
                                  ":one": {"N": "1"}}
        assignments = ["uid_validity = if_not_exists(uid_validity, :validity)",
                       "uid_next = if_not_exists(uid_next, :one)"]
        update: dict[str, Any] = {"TableName": self._table, "Key": folder_key(account, folder_id),
                                  "ReturnValues": "ALL_NEW"}
        if folder_id in ROLE_FOLDERS:
            assignments.append("folder_name = if_not_exists(folder_name, :name)")
            values[":name"] = {"S": folder_id}
        else:
            update["ConditionExpression"] = "attribute_exists(pk)"
        update.update(UpdateExpression="SET " + ", ".join(assignments),
                      ExpressionAttributeValues=values)
        try:
            item = self._client.update_item(**update)["Attributes"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise FolderNotFound(folder_id) from exc
            raise StorageUnavailable("opening folder failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("opening folder failed") from exc
        folder = codec.folder(dict(item))
        assert folder is not None  # the item was just written
        return folder

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
