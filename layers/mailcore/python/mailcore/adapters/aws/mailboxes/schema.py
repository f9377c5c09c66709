"""The table's keys: the one place that spells them (bench/ uses it too).

Items (pk, sk):
  ACCOUNT#<address>, MESSAGE#<id>        a stored message; folder_pk/folder_sk index it by
                                         folder; `version` orders concurrent changes
  ACCOUNT#<address>, FOLDER#<folder id>  a folder's name and counters
  ACCOUNT#<address>, FOLDERNAME#<name>   a user folder's name, held once (unique names)
  ACCOUNT#<address>, CHANGE#<folder id>#<modseq, 20 digits>
                                         one change of a folder: a UID added or changed,
                                         or expunged (what CONDSTORE and IDLE ask for)
The `by_folder` index (folder_pk = <address>#<folder id>, folder_sk = <received>#<id>)
serves newest-first pages that read O(page) items whatever the folder's size; `by_uid`
(folder_pk, uid) serves IMAP's UID ranges with just what a flags listing needs. Other items
in the table: RAW#, JOB#, LOGIN#, LOGINFROM#, SENT# (their adapters say what they hold).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

FOLDER_INDEX = "by_folder"
UID_INDEX = "by_uid"
TABLE_KEYS = ("pk", "sk")
INDEX_KEYS = ("pk", "sk", "folder_pk", "folder_sk")
MESSAGE_PREFIX = "MESSAGE#"
FOLDER_PREFIX = "FOLDER#"
CHANGE_PREFIX = "CHANGE#"


def account_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


def folder_partition(account: str, folder_id: str) -> str:
    return f"{account}#{folder_id}"


def folder_key(account: str, folder_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": account_pk(account)}, "sk": {"S": f"{FOLDER_PREFIX}{folder_id}"}}


def message_key(account: str, message_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": account_pk(account)}, "sk": {"S": f"{MESSAGE_PREFIX}{message_id}"}}


def folder_name_key(account: str, name: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": account_pk(account)}, "sk": {"S": f"FOLDERNAME#{name}"}}


def received_sort_key(received_at: datetime, message_id: str) -> str:
    received = received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{received}#{message_id}"


def change_key(account: str, folder_id: str, modseq: int) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": account_pk(account)}, "sk": {"S": change_sort_key(folder_id, modseq)}}


def change_sort_key(folder_id: str, modseq: int) -> str:
    return f"{CHANGE_PREFIX}{folder_id}#{modseq:020d}"
