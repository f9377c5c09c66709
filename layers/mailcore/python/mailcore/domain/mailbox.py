"""Mailboxes, folders and stored messages.

A folder has an id that never changes and a name the user may change. The six role
folders use their name as their id, so they exist before anything is stored in them;
other folders get a fresh id when created, which makes renaming touch one item
however many messages the folder holds.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

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


@dataclass(frozen=True)
class Folder:
    id: str
    name: str
    role: FolderRole | None
    total: int
    unread: int


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

    @property
    def seen(self) -> bool:
        return "seen" in self.flags


@dataclass(frozen=True)
class Page:
    messages: tuple[StoredMessage, ...]
    cursor: str | None  # opaque; None on the last page
