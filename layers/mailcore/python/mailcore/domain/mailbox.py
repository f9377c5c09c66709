"""Mailboxes, folders and stored messages.

A folder has an id that never changes and a name the user may change. The six role
folders use their name as their id, so they exist before anything is stored in them;
other folders get a fresh id when created, which makes renaming touch one item
however many messages the folder holds.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only a type here: delivery reads stored messages' ports without parsing any (its
    # cold start does not import the parser).
    from mailcore.domain.junk import JunkVerdict
    from mailcore.domain.message import MessageSummary


class FolderRole(StrEnum):
    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"


ROLE_FOLDERS: dict[str, FolderRole] = {
    "Inbox": FolderRole.INBOX,
    "Sent": FolderRole.SENT,
    "Drafts": FolderRole.DRAFTS,
    "Trash": FolderRole.TRASH,
    "Junk": FolderRole.JUNK,
    "Archive": FolderRole.ARCHIVE,
}
INBOX = "Inbox"
SENT = "Sent"
DRAFTS = "Drafts"
TRASH = "Trash"
JUNK = "Junk"
FOLDER_SEPARATOR = "/"
MAX_FOLDER_NAME = 200


def role_folder_id(name: str) -> str | None:
    """The role folder a name means, in any letter case ("INBOX" is IMAP's spelling)."""
    return next((role_name for role_name in ROLE_FOLDERS
                 if role_name.casefold() == name.casefold()), None)


def folder_name_problem(name: str) -> str | None:
    """Why `name` cannot name a new folder, or None when it can."""
    if not name or len(name) > MAX_FOLDER_NAME:
        return f"a folder name has 1 to {MAX_FOLDER_NAME} characters"
    if any(unicodedata.category(char).startswith("C") or char == "%" for char in name):
        # "%" stays out so that a name means the same encoded in a URL path or not.
        return "a folder name has no control characters and no '%'"
    if any(not part.strip() or part != part.strip()
           for part in name.split(FOLDER_SEPARATOR)):
        return "each part of a folder name between '/' is non-empty, without outer spaces"
    if role_folder_id(name) is not None:
        return "that name belongs to a role folder"
    return None


def new_uid_validity() -> int:
    """A folder's UIDVALIDITY (RFC 3501 2.3.1.1): 32 bits, nonzero, chosen once when the
    folder comes into being. Random rather than the clock, so a folder deleted and made
    again within the same second still gets another value (equal by chance: 1 in 2^32)."""
    return secrets.randbelow(0xFFFFFFFF) + 1


@dataclass(frozen=True)
class Folder:
    """A folder with its counters and its IMAP state: the UID the next message will get
    at the least (UIDs only grow, in the order messages become visible) and the MODSEQ
    of its latest change (RFC 7162). A role folder before its first message has no
    UIDVALIDITY yet (0)."""

    id: str
    name: str
    role: FolderRole | None
    total: int
    unread: int
    uid_validity: int = 0
    uid_next: int = 1
    highest_modseq: int = 0


@dataclass(frozen=True)
class StoredMessage:
    """A message placed in one account's folder, with its flags."""

    account: str
    message_id: str
    folder: str  # the folder's id
    received_at: datetime
    raw_key: str
    size: int
    summary: MessageSummary
    flags: frozenset[str] = field(default_factory=frozenset)
    # The id its raw bytes were accepted under (by the edge, or sent through the API):
    # those bytes never change. None for a draft, whose bytes are written again.
    accepted_id: str | None = None
    # Given by the mailbox when the message becomes visible in its folder (filed or moved
    # in): its UID there, and the folder's MODSEQ of its latest change. 0 before.
    uid: int = 0
    modseq: int = 0
    # Where the junk filter filed this copy and why (issue 29); None for copies it did not
    # file (sent, appended, drafts, and mail filed before it existed).
    junk_verdict: JunkVerdict | None = None
    # When it entered its folder, set by a move or a copy (domain.junk.after_move); None
    # for a message still where it was filed: then that is its received_at.
    folder_since: datetime | None = None

    @property
    def in_folder_since(self) -> datetime:
        return self.folder_since or self.received_at

    @property
    def seen(self) -> bool:
        return "seen" in self.flags

    @property
    def uid_entry(self) -> UidEntry:
        return UidEntry(self.uid, self.message_id, self.flags, self.modseq, self.size,
                        self.received_at)


@dataclass(frozen=True)
class UidEntry:
    """A message as an IMAP client sees it in a folder listing: what UID FETCH 1:* (FLAGS)
    needs, without the summary (the by-UID index holds just this)."""

    uid: int
    message_id: str
    flags: frozenset[str]
    modseq: int
    size: int
    received_at: datetime


@dataclass(frozen=True)
class FolderChanges:
    """What changed in a folder after a MODSEQ: for CONDSTORE, IDLE and (later) QRESYNC."""

    highest_modseq: int
    changed: tuple[UidEntry, ...]  # added, moved in or with new flags, by UID
    expunged: tuple[int, ...]  # UIDs gone (deleted for good, or moved out), ascending


@dataclass(frozen=True)
class Page:
    messages: tuple[StoredMessage, ...]
    cursor: str | None  # opaque; None on the last page
