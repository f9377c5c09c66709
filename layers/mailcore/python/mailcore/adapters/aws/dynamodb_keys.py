"""The mailbox table's keys: the one module that spells them.

Items (pk, sk):
  ACCOUNT#<address>, MESSAGE#<id>        a stored message; folder_pk/folder_sk index it by
                                         folder; `version` orders concurrent changes
  ACCOUNT#<address>, FOLDER#<folder id>  a folder's name and counters
  ACCOUNT#<address>, FOLDERNAME#<name>   a user folder's name, held once (unique names)
  ACCOUNT#<address>, VIEW#<id>           a stored message's IMAP view (mailcore/imap_view),
                                         written once with its bytes, gone with the message
  ACCOUNT#<address>, CHANGE#<folder id>#<modseq, 20 digits>
                                         one change of a folder: a UID added or changed,
                                         or expunged (what CONDSTORE and IDLE ask for)
  RAW#<raw key>, REFS                    who still needs a message's raw bytes
  RAW#<raw key>, JOB#<domain>            a delivery job that gave its reference back
  JOB#<message id>, DOMAIN#<domain>      a delivery job and its recipients' statuses
  SENT#<address>, HOUR#<hour>            recipients an account sent in an hour
  LOGIN#<address>, FAILURES              failed logins of an address in a window
  LOGINFROM#<client address>, FAILURES   failed logins from a client address in a window
  MTASTS#<domain>, POLICY                a destination domain's MTA-STS policy as fetched,
                                         with its TXT id and expiry (the deliver function)
  SUPPRESSED#<domain>, ADDRESS#<address> an address the domain stops sending to (its
                                         suppression list: one partition per domain)
  JUNK#<address>, STATE                  an account's junk filter (issue 29): its model's
                                         version and trained counts, its settings (allow
                                         and block lists, junk_days)
  JUNK#<address>, MODEL                  the model's bytes (at most 300,000) and version
  JUNK#<address>, SENDER#<identity>      what the account taught of an identity's mail (an
                                         address or a domain): junk and not_junk counts
  JUNK#<address>, WROTE#<identity>       the account sent mail to the identity
  JUNK#<address>, LESSON#<lesson key>    what was learned from one message (its lesson
                                         and the identities it counted in), to undo it
  (JUNK#, not ACCOUNT#: the IMAP edge's role may touch ACCOUNT# items and never needs
  the filter, so its LeadingKeys leave the filter out.)
The `by_folder` index (folder_pk = <address>#<folder id>, folder_sk = <received>#<id>)
serves newest-first pages that read O(page) items whatever the folder's size; `by_uid`
(folder_pk, uid) serves IMAP's UID ranges with just what a flags listing needs.

In the AWS adapters, since only they touch the table (services and the domain never do);
outside `mailboxes/`, so that the delivery function, which keeps only job items, does not
load the mailbox package at its cold start. template.yaml cannot import it:
tests/unit/test_storage_keys.py checks the edge role's LeadingKeys conditions and the
table's indexes against it, and finds any other place that spells these prefixes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Key = dict[str, AttributeValueTypeDef]

FOLDER_INDEX = "by_folder"
UID_INDEX = "by_uid"
TABLE_KEYS = ("pk", "sk")
INDEX_KEYS = ("pk", "sk", "folder_pk", "folder_sk")

# Partition keys.
ACCOUNT_PREFIX = "ACCOUNT#"
RAW_PREFIX = "RAW#"
JOB_PREFIX = "JOB#"  # also the sort key of a job's given-back reference under RAW#
SENT_PREFIX = "SENT#"
LOGIN_PREFIX = "LOGIN#"
LOGIN_FROM_PREFIX = "LOGINFROM#"
MTA_STS_PREFIX = "MTASTS#"
SUPPRESSED_PREFIX = "SUPPRESSED#"
JUNK_PREFIX = "JUNK#"
PARTITION_PREFIXES = (ACCOUNT_PREFIX, RAW_PREFIX, JOB_PREFIX, SENT_PREFIX, LOGIN_PREFIX,
                      LOGIN_FROM_PREFIX, MTA_STS_PREFIX, SUPPRESSED_PREFIX, JUNK_PREFIX)
# Sort keys.
MESSAGE_PREFIX = "MESSAGE#"
FOLDER_PREFIX = "FOLDER#"
FOLDER_NAME_PREFIX = "FOLDERNAME#"
CHANGE_PREFIX = "CHANGE#"
VIEW_PREFIX = "VIEW#"
DOMAIN_PREFIX = "DOMAIN#"
HOUR_PREFIX = "HOUR#"
ADDRESS_PREFIX = "ADDRESS#"
SENDER_PREFIX = "SENDER#"
WROTE_PREFIX = "WROTE#"
LESSON_PREFIX = "LESSON#"
SORT_PREFIXES = (MESSAGE_PREFIX, FOLDER_PREFIX, FOLDER_NAME_PREFIX, CHANGE_PREFIX,
                 VIEW_PREFIX, DOMAIN_PREFIX, HOUR_PREFIX, ADDRESS_PREFIX, SENDER_PREFIX,
                 WROTE_PREFIX, LESSON_PREFIX)
REFERENCES_SORT_KEY = "REFS"
FAILURES_SORT_KEY = "FAILURES"
POLICY_SORT_KEY = "POLICY"
JUNK_STATE_SORT_KEY = "STATE"
JUNK_MODEL_SORT_KEY = "MODEL"
SORT_KEYS = (REFERENCES_SORT_KEY, FAILURES_SORT_KEY, POLICY_SORT_KEY, JUNK_STATE_SORT_KEY,
             JUNK_MODEL_SORT_KEY)
# What the edge's role may touch (its LeadingKeys conditions in template.yaml): SMTP the
# login and sending counters, IMAP an account's items and the raw bytes' references.
EDGE_SMTP_PARTITIONS = (SENT_PREFIX, LOGIN_PREFIX, LOGIN_FROM_PREFIX)
EDGE_IMAP_PARTITIONS = (ACCOUNT_PREFIX, RAW_PREFIX)
# ...and SMTP reads, never writes, the suppression lists (submission refuses at RCPT).
EDGE_SMTP_READ_PARTITIONS = (SUPPRESSED_PREFIX,)
# The junk filter's state, which filing reads in one batch (its role's statement for the
# batched read names just this partition); never the edge's.
JUNK_FILTER_PARTITIONS = (JUNK_PREFIX,)


def _key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


# -- an account's mailbox ------------------------------------------------------------------
def account_pk(account: str) -> str:
    return f"{ACCOUNT_PREFIX}{account}"


def folder_partition(account: str, folder_id: str) -> str:
    return f"{account}#{folder_id}"


def folder_key(account: str, folder_id: str) -> Key:
    return _key(account_pk(account), f"{FOLDER_PREFIX}{folder_id}")


def folder_id_of_sort_key(sort_key: str) -> str:
    return sort_key.removeprefix(FOLDER_PREFIX)


def message_key(account: str, message_id: str) -> Key:
    return _key(account_pk(account), f"{MESSAGE_PREFIX}{message_id}")


def imap_view_key(account: str, message_id: str) -> Key:
    return _key(account_pk(account), f"{VIEW_PREFIX}{message_id}")


def message_id_of_view_key(sort_key: str) -> str:
    return sort_key.removeprefix(VIEW_PREFIX)


def folder_name_key(account: str, name: str) -> Key:
    return _key(account_pk(account), f"{FOLDER_NAME_PREFIX}{name}")


def received_sort_key(received_at: datetime, message_id: str) -> str:
    received = received_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{received}#{message_id}"


def change_key(account: str, folder_id: str, modseq: int) -> Key:
    return _key(account_pk(account), change_sort_key(folder_id, modseq))


def change_sort_key(folder_id: str, modseq: int) -> str:
    return f"{CHANGE_PREFIX}{folder_id}#{modseq:020d}"


def modseq_of_change(sort_key: str) -> int:
    return int(sort_key.rsplit("#", 1)[1])


# -- raw bytes' references -----------------------------------------------------------------
def raw_references_key(raw_key: str) -> Key:
    return _key(f"{RAW_PREFIX}{raw_key}", REFERENCES_SORT_KEY)


def job_release_key(raw_key: str, domain: str) -> Key:
    return _key(f"{RAW_PREFIX}{raw_key}", f"{JOB_PREFIX}{domain}")


# -- delivery jobs ---------------------------------------------------------------------------
def job_pk(message_id: str) -> str:
    return f"{JOB_PREFIX}{message_id}"


def job_key(message_id: str, domain: str) -> Key:
    return _key(job_pk(message_id), f"{DOMAIN_PREFIX}{domain}")


def job_of_key(pk: str, sk: str) -> tuple[str, str]:
    """(message id, destination domain) of a job item's key."""
    return pk.removeprefix(JOB_PREFIX), sk.removeprefix(DOMAIN_PREFIX)


# -- counters --------------------------------------------------------------------------------
def sent_key(account: str, hour: int) -> Key:
    return _key(f"{SENT_PREFIX}{account.casefold()}", f"{HOUR_PREFIX}{hour}")


def login_key(address: str) -> Key:
    return _key(f"{LOGIN_PREFIX}{address.casefold()}", FAILURES_SORT_KEY)


def login_from_key(client: str) -> Key:
    return _key(f"{LOGIN_FROM_PREFIX}{client.casefold()}", FAILURES_SORT_KEY)


# -- transport security ----------------------------------------------------------------------
def mta_sts_key(domain: str) -> Key:
    return _key(f"{MTA_STS_PREFIX}{domain.lower()}", POLICY_SORT_KEY)


# -- suppression lists -----------------------------------------------------------------------
def suppressed_pk(domain: str) -> str:
    return f"{SUPPRESSED_PREFIX}{domain.lower()}"


def suppressed_key(domain: str, address: str) -> Key:
    return _key(suppressed_pk(domain), f"{ADDRESS_PREFIX}{address}")


# -- junk filters ----------------------------------------------------------------------------
def junk_pk(account: str) -> str:
    return f"{JUNK_PREFIX}{account}"


def junk_state_key(account: str) -> Key:
    return _key(junk_pk(account), JUNK_STATE_SORT_KEY)


def junk_model_key(account: str) -> Key:
    return _key(junk_pk(account), JUNK_MODEL_SORT_KEY)


def junk_sender_key(account: str, identity: str) -> Key:
    return _key(junk_pk(account), f"{SENDER_PREFIX}{identity}")


def junk_wrote_key(account: str, identity: str) -> Key:
    return _key(junk_pk(account), f"{WROTE_PREFIX}{identity}")


def junk_lesson_key(account: str, lesson_key: str) -> Key:
    return _key(junk_pk(account), f"{LESSON_PREFIX}{lesson_key}")


def junk_item_of_sort_key(sort_key: str) -> tuple[str, str]:
    """(kind, name) of a junk filter item's sort key: ("STATE", ""), ("MODEL", ""),
    ("SENDER#", identity), ("WROTE#", identity), ("LESSON#", lesson key)."""
    for prefix in (SENDER_PREFIX, WROTE_PREFIX, LESSON_PREFIX):
        if sort_key.startswith(prefix):
            return prefix, sort_key.removeprefix(prefix)
    return sort_key, ""
