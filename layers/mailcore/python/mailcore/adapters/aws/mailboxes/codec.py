"""Stored messages and folders as DynamoDB items, and paging cursors, both ways."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailcore.adapters.aws.dynamodb_keys import (
    folder_id_of_sort_key,
    folder_partition,
    message_key,
    received_sort_key,
)
from mailcore.domain.junk import DecidedBy, JunkVerdict
from mailcore.domain.mailbox import ROLE_FOLDERS, Folder, Page, StoredMessage, UidEntry
from mailcore.domain.message import MessageSummary, search_text
from mailcore.errors import InvalidCursor
from mailcore.s3_keys import message_id_of_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def message_item(message: StoredMessage, version: int) -> dict[str, AttributeValueTypeDef]:
    summary = message.summary
    return {
        **message_key(message.account, message.message_id),
        "version": {"N": str(version)},
        "search": {"S": search_text(summary)},
        "folder_pk": {"S": folder_partition(message.account, message.folder)},
        "folder_sk": {"S": received_sort_key(message.received_at, message.message_id)},
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
        "accepted_id": _optional(message.accepted_id),
        # Keys of the by_uid index (so a message without a UID yet is not in it).
        **({"uid": {"N": str(message.uid)}} if message.uid else {}),
        "modseq": {"N": str(message.modseq)},
        # Filing's junk verdict for this copy (issue 29); none on messages not filed by it.
        **({"junk_verdict": _verdict(message.junk_verdict)} if message.junk_verdict else {}),
        # When a move or copy put it in its folder; none while it is where it was filed.
        **({"folder_since": {"S": message.folder_since.astimezone(UTC).isoformat()}}
           if message.folder_since else {}),
    }


# What the by_uid index keeps of each message besides its keys (template.yaml).
UID_INDEX_ATTRIBUTES = ("message_id", "flags", "modseq", "size", "received_at")
# What a listing by UID reads of each entry: not its keys (a third fewer attributes for
# the client to parse). Names through placeholders: SIZE is a reserved word.
UID_ENTRY_NAMES = {f"#{name}": name for name in ("uid", *UID_INDEX_ATTRIBUTES)}
UID_ENTRY_PROJECTION = ", ".join(UID_ENTRY_NAMES)


def stored_message(item: dict[str, Any]) -> StoredMessage:
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
        # Items written before the field: the raw key of an accepted message names its id.
        accepted_id=(_text(item, "accepted_id") if "accepted_id" in item
                     else message_id_of_key(item["raw_key"]["S"])),
        uid=_number(item, "uid"),
        modseq=_number(item, "modseq"),
        junk_verdict=_junk_verdict(item.get("junk_verdict")),
        folder_since=(datetime.fromisoformat(item["folder_since"]["S"])
                      if "folder_since" in item else None),
    )


def uid_entry(item: dict[str, Any]) -> UidEntry:
    """A by_uid index item (or a whole message item) as a listing entry."""
    return UidEntry(
        uid=_number(item, "uid"),
        message_id=item["message_id"]["S"],
        flags=frozenset(_list(item, "flags")),
        modseq=_number(item, "modseq"),
        size=_number(item, "size"),
        received_at=datetime.fromisoformat(item["received_at"]["S"]),
    )


def version(item: dict[str, Any]) -> int:
    return int(item.get("version", {"N": "0"})["N"])


def folder(item: dict[str, Any], name: str | None = None) -> Folder | None:
    """The folder an item describes, or None for no item. Every attribute but the key may
    be missing: a role folder's item is made by the first counter update that reaches it,
    and an item read between a rename's or delete's writes may be gone."""
    if "sk" not in item:
        return None
    folder_id = folder_id_of_sort_key(item["sk"]["S"])
    role = ROLE_FOLDERS.get(folder_id)
    stored_name = item.get("folder_name", {}).get("S") or (folder_id if role else name)
    if stored_name is None:
        return None
    return Folder(
        id=folder_id,
        name=stored_name,
        role=role,
        total=_number(item, "total"),
        unread=_number(item, "unread"),
        uid_validity=_number(item, "uid_validity"),
        uid_next=_number(item, "uid_next") or 1,
        highest_modseq=_number(item, "modseq"),
    )


def encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str, fixed: dict[str, str],
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
        raise InvalidCursor from exc
    if not valid:
        # A cursor from another folder or account is just as invalid as garbage.
        raise InvalidCursor
    return {name: {"S": value} for name, value in plain.items()}


def _verdict(verdict: JunkVerdict) -> AttributeValueTypeDef:
    return {"M": {"junk": {"BOOL": verdict.junk}, "decided_by": {"S": str(verdict.decided_by)},
                  "score": {"NULL": True} if verdict.score is None
                  else {"N": repr(verdict.score)},
                  "reasons": _strings(verdict.reasons)}}


def _junk_verdict(value: dict[str, Any] | None) -> JunkVerdict | None:
    if value is None or "M" not in value:
        return None  # written before verdicts, or by a path that files without one
    fields = value["M"]
    score = fields.get("score", {"NULL": True})
    return JunkVerdict(junk=bool(fields["junk"]["BOOL"]),
                       decided_by=DecidedBy(fields["decided_by"]["S"]),
                       score=None if "NULL" in score else float(score["N"]),
                       reasons=_list(fields, "reasons"))


def _strings(values: tuple[str, ...]) -> AttributeValueTypeDef:
    return {"L": [{"S": value} for value in values]}


def _optional(value: str | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": value}


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {"NULL": True})
    return None if "NULL" in value else str(value["S"])


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _list(item: dict[str, Any], name: str) -> tuple[str, ...]:
    return tuple(str(value["S"]) for value in item.get(name, {"L": []})["L"])


def page_of(response: dict[str, Any]) -> Page:
    """A page of stored messages from a Query's answer, with the cursor to the next."""
    last = response.get("LastEvaluatedKey")
    return Page(messages=tuple(stored_message(item) for item in response.get("Items", [])),
                cursor=encode_cursor(last) if last else None)
