"""Mailboxes in one DynamoDB table.

Items (pk, sk):
  ACCOUNT#<address>, MESSAGE#<id>    a stored message; folder_pk/folder_sk index it by folder
  ACCOUNT#<address>, FOLDER#<name>   a folder's counters
The `by_folder` index (folder_pk = <address>#<folder>, folder_sk = <received>#<id>)
serves newest-first pages that read O(page) items whatever the folder's size.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.domain.ids import is_message_id
from mailcore.domain.mailbox import ROLE_FOLDERS, Folder, Page, StoredMessage
from mailcore.domain.message import MessageSummary
from mailcore.errors import InvalidRequest, MessageNotFound, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

FOLDER_INDEX = "by_folder"


class DynamoMailboxRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def file(self, message: StoredMessage) -> bool:
        unread = 0 if message.seen else 1
        try:
            # One transaction: the message appears once and the folder counts move with it,
            # or neither happens (a repeated event is cancelled by the condition).
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _message_item(message),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _folder_key(message.account, message.folder),
                            "UpdateExpression": "SET folder_name = :name "
                            "ADD #total :one, #unread :unread",
                            "ExpressionAttributeNames": {"#total": "total", "#unread": "unread"},
                            "ExpressionAttributeValues": {
                                ":name": {"S": message.folder},
                                ":one": {"N": "1"},
                                ":unread": {"N": str(unread)},
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _is_duplicate(exc):
                return False
            raise StorageUnavailable("filing failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("filing failed") from exc
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
            query["ExclusiveStartKey"] = _decode_cursor(cursor, partition)
        try:
            response = self._client.query(**query)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("listing failed") from exc
        last = response.get("LastEvaluatedKey")
        return Page(
            messages=tuple(_stored_message(item) for item in response.get("Items", [])),
            cursor=_encode_cursor(last) if last else None,
        )

    def get(self, account: str, message_id: str) -> StoredMessage:
        if not is_message_id(message_id):
            raise MessageNotFound(message_id)
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": _account_pk(account)}, "sk": {"S": f"MESSAGE#{message_id}"}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading failed") from exc
        item = response.get("Item")
        if item is None:
            raise MessageNotFound(message_id)
        return _stored_message(item)

    def folders(self, account: str) -> list[Folder]:
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :folder)",
                ExpressionAttributeValues={
                    ":pk": {"S": _account_pk(account)},
                    ":folder": {"S": "FOLDER#"},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("listing folders failed") from exc
        return [
            Folder(
                name=item["folder_name"]["S"],
                role=ROLE_FOLDERS.get(item["folder_name"]["S"]),
                total=int(item.get("total", {"N": "0"})["N"]),
                unread=int(item.get("unread", {"N": "0"})["N"]),
            )
            for item in response.get("Items", [])
        ]


def _account_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


def _folder_key(account: str, folder: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": _account_pk(account)}, "sk": {"S": f"FOLDER#{folder}"}}


def _is_duplicate(exc: ClientError) -> bool:
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons", [])
    if reasons:
        return reasons[0].get("Code") == "ConditionalCheckFailed"
    # Some endpoints only say it in the message: "[ConditionalCheckFailed, None]".
    return "ConditionalCheckFailed" in str(exc.response.get("Error", {}).get("Message", ""))


def _received_sort_key(message: StoredMessage) -> str:
    received = message.received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{received}#{message.message_id}"


def _strings(values: tuple[str, ...]) -> AttributeValueTypeDef:
    return {"L": [{"S": value} for value in values]}


def _optional(value: str | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": value}


def _message_item(message: StoredMessage) -> dict[str, AttributeValueTypeDef]:
    summary = message.summary
    return {
        "pk": {"S": _account_pk(message.account)},
        "sk": {"S": f"MESSAGE#{message.message_id}"},
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
        ),
    )


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, partition: str) -> dict[str, AttributeValueTypeDef]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(plain, dict)
            and set(plain) == {"pk", "sk", "folder_pk", "folder_sk"}
            and all(isinstance(value, str) for value in plain.values())
            and plain["folder_pk"] == partition
        )
    except (ValueError, binascii.Error) as exc:
        raise InvalidRequest("invalid cursor", field="cursor") from exc
    if not valid:
        # A cursor from another folder or account is just as invalid as garbage.
        raise InvalidRequest("invalid cursor", field="cursor")
    return {name: {"S": value} for name, value in plain.items()}
