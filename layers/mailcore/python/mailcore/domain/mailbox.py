"""Mailboxes, folders and stored messages."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Folder:
    name: str
    role: FolderRole | None
    total: int
    unread: int


@dataclass(frozen=True)
class StoredMessage:
    """A message placed in one account's folder, with its flags."""

    account: str
    message_id: str
    folder: str
    received_at: datetime
    raw_key: str
    size: int
    summary: MessageSummary
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def seen(self) -> bool:
        return "seen" in self.flags


@dataclass(frozen=True)
class Page:
    messages: tuple[StoredMessage, ...]
    cursor: str | None  # opaque; None on the last page
