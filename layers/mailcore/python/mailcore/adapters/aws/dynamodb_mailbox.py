"""Mailboxes in one DynamoDB table.

Items (pk, sk):
  ACCOUNT#<address>, MESSAGE#<id>        a stored message; folder_pk/folder_sk index it by
                                         folder; `version` orders concurrent changes
  ACCOUNT#<address>, FOLDER#<folder id>  a folder's name and counters
  ACCOUNT#<address>, FOLDERNAME#<name>   a user folder's name, held once (unique names)
  RAW#<raw key>, REFS                    who still needs those raw bytes
                                         (dynamodb_raw_references.py)
The `by_folder` index (folder_pk = <address>#<folder id>, folder_sk = <received>#<id>)
serves newest-first pages that read O(page) items whatever the folder's size.
Every change that moves a count is one transaction with the counters it moves.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences, reference_change
from mailcore.domain.ids import is_message_id, new_message_id
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    ROLE_FOLDERS,
    Folder,
    Page,
    StoredMessage,
    role_folder_id,
)
from mailcore.domain.message import MessageSummary, search_text
from mailcore.errors import (
    Conflict,
    FolderNotFound,
    InvalidRequest,
    MessageNotFound,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# Transaction items are built from parts (conditions, counters), so typed loosely here.
_TransactItem = dict[str, Any]

FOLDER_INDEX = "by_folder"
SEARCH_BUDGET = 500  # items a search request may read
MAX_RENAMED_FOLDERS = 33  # three transaction items each, within DynamoDB's 100
_ATTEMPTS = 8


class DynamoMailboxRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._references = DynamoRawReferences(client, table)

    # ---- filing and reading ------------------------------------------------------------
    def file(self, message: StoredMessage) -> bool:
        try:
            # One transaction: the message appears once and the folder counts move with it,
            # or neither happens (a repeated event is cancelled by the condition).
            # The raw bytes' reference was held before (RawReferences.hold).
            self._transact([
                {"Put": {"TableName": self._table, "Item": _message_item(message, 0),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                self._counter(message.account, message.folder, 1, 0 if message.seen else 1),
            ])
        except _Cancelled as cancelled:
            if cancelled.failed_condition(0):
                return False
            raise StorageUnavailable("filing failed") from cancelled
        return True

    def list_folder(self, account: str, folder: str, limit: int, cursor: str | None) -> Page:
        partition = f"{account}#{folder}"
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": FOLDER_INDEX,
            "KeyConditionExpression": "folder_pk = :partition",
            "ExpressionAttributeValues": {":partition": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, {"folder_pk": partition},
                                                        _INDEX_KEYS)
        response = self._query(query, "listing failed")
        last = response.get("LastEvaluatedKey")
        return Page(
            messages=tuple(_stored_message(item) for item in response.get("Items", [])),
            cursor=_encode_cursor(last) if last else None,
        )

    def get(self, account: str, message_id: str) -> StoredMessage:
        return _stored_message(self._message_item(account, message_id))

    def folders(self, account: str) -> list[Folder]:
        response = self._query({
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :folder)",
            "ExpressionAttributeValues": {":pk": {"S": _account_pk(account)},
                                          ":folder": {"S": "FOLDER#"}},
        }, "listing folders failed")
        found = (_folder(item) for item in response.get("Items", []))
        return [folder for folder in found if folder is not None]

    # ---- folders -----------------------------------------------------------------------
    def folder_named(self, account: str, name: str) -> Folder:
        role_id = role_folder_id(name)
        if role_id is not None:
            item = self._get_item(_folder_key(account, role_id), "reading folder failed")
            return _folder(item) or Folder(role_id, role_id, ROLE_FOLDERS[role_id], 0, 0)
        name_item = self._get_item(_folder_name_key(account, name), "reading folder failed")
        folder_id = name_item.get("folder_id", {}).get("S")
        item = self._get_item(_folder_key(account, folder_id),
                              "reading folder failed") if folder_id else {}
        folder = _folder(item, name)
        if folder is None:
            raise FolderNotFound(name)
        return folder

    def create_folder(self, account: str, name: str) -> Folder:
        folder_id = new_message_id()
        try:
            self._transact([
                {"Put": {"TableName": self._table,
                         "Item": {**_folder_name_key(account, name),
                                  "folder_id": {"S": folder_id}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table,
                         "Item": {**_folder_key(account, folder_id),
                                  "folder_name": {"S": name}, "total": {"N": "0"},
                                  "unread": {"N": "0"}}}},
            ])
        except _Cancelled as cancelled:
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
        items: list[_TransactItem] = []
        for moved in moving:
            target = new_name + moved.name[len(folder.name):]
            items += [
                {"Update": {"TableName": self._table, "Key": _folder_key(account, moved.id),
                            "UpdateExpression": "SET folder_name = :new",
                            "ConditionExpression": "folder_name = :old",
                            "ExpressionAttributeValues": {":new": {"S": target},
                                                          ":old": {"S": moved.name}}}},
                {"Delete": {"TableName": self._table,
                            "Key": _folder_name_key(account, moved.name),
                            "ConditionExpression": "folder_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": moved.id}}}},
                {"Put": {"TableName": self._table,
                         "Item": {**_folder_name_key(account, target),
                                  "folder_id": {"S": moved.id}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        try:
            self._transact(items)
        except _Cancelled as cancelled:
            if any(cancelled.failed_condition(index) for index in range(2, len(items), 3)):
                raise Conflict(f"a folder named {new_name!r} exists") from cancelled
            if cancelled.conditions_failed:
                raise Conflict("the folder changed meanwhile; try again") from cancelled
            raise StorageUnavailable("renaming folder failed") from cancelled
        return replace(folder, name=new_name)

    def delete_folder(self, account: str, folder: Folder) -> None:
        try:
            self._transact([
                {"Delete": {"TableName": self._table, "Key": _folder_key(account, folder.id),
                            "ConditionExpression": "attribute_exists(pk) AND #total = :zero",
                            "ExpressionAttributeNames": {"#total": "total"},
                            "ExpressionAttributeValues": {":zero": {"N": "0"}}}},
                {"Delete": {"TableName": self._table,
                            "Key": _folder_name_key(account, folder.name),
                            "ConditionExpression": "folder_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": folder.id}}}},
            ])
        except _Cancelled as cancelled:
            if cancelled.conditions_failed:
                raise Conflict("only an empty folder can be deleted") from cancelled
            raise StorageUnavailable("deleting folder failed") from cancelled

    # ---- changing messages -------------------------------------------------------------
    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        for attempt in range(_ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = _stored_message(item), _version(item)
            changed = change(current)
            if changed == current:
                return current
            items: list[_TransactItem] = [
                {"Put": {"TableName": self._table, "Item": _message_item(changed, version + 1),
                         **_version_condition(version)}},
                *self._count_moves(current, changed),
            ]
            try:
                self._transact(items)
                return changed
            except _Cancelled as cancelled:
                if changed.folder != current.folder and cancelled.failed_condition(2):
                    raise FolderNotFound(changed.folder) from cancelled
                if not cancelled.retryable:
                    raise StorageUnavailable("changing message failed") from cancelled
            _back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

    def remove(self, account: str, message_id: str) -> tuple[StoredMessage, bool]:
        for attempt in range(_ATTEMPTS):
            item = self._message_item(account, message_id)
            current, version = _stored_message(item), _version(item)
            try:
                self._transact([
                    {"Delete": {"TableName": self._table, "Key": _message_key(account,
                                                                               message_id),
                                **_version_condition(version)}},
                    self._counter(account, current.folder, -1, 0 if current.seen else -1),
                    reference_change(self._table, current.raw_key, -1),
                ])
                return current, self._references.let_go_if_unreferenced(current.raw_key)
            except _Cancelled as cancelled:
                if not cancelled.retryable:
                    raise StorageUnavailable("deleting message failed") from cancelled
            _back_off(attempt)
        raise StorageUnavailable("message kept changing; try again")

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
            key_names: tuple[str, ...] = _TABLE_KEYS
            fixed = {"pk": _account_pk(account)}
            query["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :message)"
            query["ExpressionAttributeValues"] = {":pk": {"S": _account_pk(account)},
                                                  ":message": {"S": "MESSAGE#"}}
        else:
            key_names, fixed = _INDEX_KEYS, {"folder_pk": f"{account}#{folder}"}
            query["IndexName"] = FOLDER_INDEX
            query["KeyConditionExpression"] = "folder_pk = :partition"
            query["ExpressionAttributeValues"] = {":partition": {"S": f"{account}#{folder}"}}
        query["ExpressionAttributeValues"][":words"] = {"S": words}
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, fixed, key_names)
        response = self._query(query, "searching failed")
        items = response.get("Items", [])
        if len(items) > limit:
            # Stop after `limit` matches; the next page starts after the last one shown.
            items = items[:limit]
            last: dict[str, Any] | None = {name: items[-1][name] for name in key_names}
        else:
            last = response.get("LastEvaluatedKey")
        return Page(messages=tuple(_stored_message(item) for item in items),
                    cursor=_encode_cursor(last) if last else None)

    # ---- helpers -----------------------------------------------------------------------
    def _count_moves(self, before: StoredMessage,
                     after: StoredMessage) -> Iterable[_TransactItem]:
        unread_before, unread_after = int(not before.seen), int(not after.seen)
        if before.folder == after.folder:
            if unread_after != unread_before:
                yield self._counter(after.account, after.folder, 0,
                                    unread_after - unread_before)
            return
        yield self._counter(before.account, before.folder, -1, -unread_before)
        yield self._counter(after.account, after.folder, 1, unread_after)

    def _counter(self, account: str, folder: str, total: int,
                 unread: int) -> _TransactItem:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _folder_key(account, folder),
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

    def _message_item(self, account: str, message_id: str) -> dict[str, Any]:
        if not is_message_id(message_id):
            raise MessageNotFound(message_id)
        item = self._get_item(_message_key(account, message_id), "reading failed")
        if not item:
            raise MessageNotFound(message_id)
        return item

    def _get_item(self, key: dict[str, AttributeValueTypeDef], failure: str) -> dict[str, Any]:
        try:
            return dict(self._client.get_item(TableName=self._table, Key=key,
                                              ConsistentRead=True).get("Item", {}))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(failure) from exc

    def _query(self, query: dict[str, Any], failure: str) -> dict[str, Any]:
        try:
            return dict(self._client.query(**query))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(failure) from exc

    def _transact(self, items: list[_TransactItem]) -> None:
        try:
            self._client.transact_write_items(TransactItems=cast(Any, items))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise _Cancelled(exc) from exc
            raise StorageUnavailable("transaction failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("transaction failed") from exc


class _Cancelled(Exception):
    """A cancelled transaction, with the reason of each of its items."""

    def __init__(self, exc: ClientError) -> None:
        super().__init__(str(exc))
        reasons = exc.response.get("CancellationReasons", [])
        self.codes = [str(reason.get("Code") or "None") for reason in reasons]
        if not self.codes:
            # Some endpoints only say it in the message: "[ConditionalCheckFailed, None]".
            message = str(exc.response.get("Error", {}).get("Message", ""))
            inside = message[message.find("[") + 1 : message.rfind("]")]
            self.codes = [code.strip() for code in inside.split(",")]

    def failed_condition(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"

    @property
    def conditions_failed(self) -> bool:
        return "ConditionalCheckFailed" in self.codes

    @property
    def retryable(self) -> bool:
        # Another writer came first (our version condition) or was busy with the same item.
        return all(code in {"None", "ConditionalCheckFailed", "TransactionConflict"}
                   for code in self.codes)


def _back_off(attempt: int) -> None:
    # Jitter only spreads retries apart; it needs no secrecy.
    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311


def _version(item: dict[str, Any]) -> int:
    return int(item.get("version", {"N": "0"})["N"])


def _version_condition(version: int) -> dict[str, Any]:
    condition = "version = :version"
    if version == 0:
        condition = "attribute_not_exists(version) OR " + condition
    return {"ConditionExpression": condition,
            "ExpressionAttributeValues": {":version": {"N": str(version)}}}


def _folder(item: dict[str, Any], name: str | None = None) -> Folder | None:
    """The folder an item describes, or None for no item. Every attribute but the key may
    be missing: a role folder's item is made by the first counter update that reaches it
    (moto applies an update's clauses one by one, so a reader can see counters before the
    name), and an item read between a rename's or delete's writes may be gone."""
    if "sk" not in item:
        return None
    folder_id = item["sk"]["S"].removeprefix("FOLDER#")
    role = ROLE_FOLDERS.get(folder_id)
    stored_name = item.get("folder_name", {}).get("S") or (folder_id if role else name)
    if stored_name is None:
        return None
    return Folder(
        id=folder_id,
        name=stored_name,
        role=role,
        total=int(item.get("total", {}).get("N", "0")),
        unread=int(item.get("unread", {}).get("N", "0")),
    )


def _account_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


def _folder_key(account: str, folder: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": _account_pk(account)}, "sk": {"S": f"FOLDER#{folder}"}}


def _message_key(account: str, message_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": _account_pk(account)}, "sk": {"S": f"MESSAGE#{message_id}"}}


def _folder_name_key(account: str, name: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": _account_pk(account)}, "sk": {"S": f"FOLDERNAME#{name}"}}


_TABLE_KEYS = ("pk", "sk")
_INDEX_KEYS = ("pk", "sk", "folder_pk", "folder_sk")


def _received_sort_key(message: StoredMessage) -> str:
    received = message.received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{received}#{message.message_id}"


def _strings(values: tuple[str, ...]) -> AttributeValueTypeDef:
    return {"L": [{"S": value} for value in values]}


def _optional(value: str | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": value}


def _message_item(message: StoredMessage, version: int) -> dict[str, AttributeValueTypeDef]:
    summary = message.summary
    return {
        **_message_key(message.account, message.message_id),
        "version": {"N": str(version)},
        "search": {"S": search_text(summary)},
        "folder_pk": {"S": f"{message.account}#{message.folder}"},
        "folder_sk": {"S": _received_sort_key(message)},
        "account": {"S": message.account},
        "message_id": {"S": message.message_id},
        "folder": {"S": message.folder},
        "received_at": {"S": message.received_at.astimezone(UTC).isoformat()},
        "raw_key": {"S": message.raw_key},
        "size": {"N": str(message.size)},
        "flags": _strings(tuple(sorted(message.flags))),
        "from": {"S": summary.from_},
        "to": _strings(summary.to),
        "cc": _strings(summary.cc),
        "subject": {"S": summary.subject},
        "date": _optional(summary.date),
        "message_id_header": _optional(summary.message_id_header),
        "snippet": {"S": summary.snippet},
        "has_attachments": {"BOOL": summary.has_attachments},
        "parse_problem": _optional(summary.parse_problem),
        "thread_id": _optional(summary.thread_id),
    }


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {"NULL": True})
    return None if "NULL" in value else str(value["S"])


def _list(item: dict[str, Any], name: str) -> tuple[str, ...]:
    return tuple(str(value["S"]) for value in item.get(name, {"L": []})["L"])


def _stored_message(item: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        account=item["account"]["S"],
        message_id=item["message_id"]["S"],
        folder=item["folder"]["S"],
        received_at=datetime.fromisoformat(item["received_at"]["S"]),
        raw_key=item["raw_key"]["S"],
        size=int(item["size"]["N"]),
        flags=frozenset(_list(item, "flags")),
        summary=MessageSummary(
            from_=item["from"]["S"],
            to=_list(item, "to"),
            cc=_list(item, "cc"),
            subject=item["subject"]["S"],
            date=_text(item, "date"),
            message_id_header=_text(item, "message_id_header"),
            snippet=item["snippet"]["S"],
            has_attachments=bool(item["has_attachments"]["BOOL"]),
            parse_problem=_text(item, "parse_problem"),
            thread_id=_text(item, "thread_id"),
        ),
    )


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, fixed: dict[str, str],
                   names: tuple[str, ...]) -> dict[str, AttributeValueTypeDef]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(plain, dict)
            and set(plain) == set(names)
            and all(isinstance(value, str) for value in plain.values())
            and all(plain[name] == value for name, value in fixed.items())
        )
    except (ValueError, binascii.Error) as exc:
        raise InvalidRequest("invalid cursor", field="cursor") from exc
    if not valid:
        # A cursor from another folder or account is just as invalid as garbage.
        raise InvalidRequest("invalid cursor", field="cursor")
    return {name: {"S": value} for name, value in plain.items()}
