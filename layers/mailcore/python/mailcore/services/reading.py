"""What a user agent reads: folders, pages of messages, one message, its raw bytes."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.mailbox import ROLE_FOLDERS, Folder, Page, StoredMessage
from mailcore.domain.message import MessageContent, read_content
from mailcore.errors import FolderNotFound
from mailcore.ports import MailboxRepository, RawMessageStore

MAX_PAGE = 100


@dataclass(frozen=True)
class MessageView:
    stored: StoredMessage
    content: MessageContent


def list_mailboxes(account: str, mailboxes: MailboxRepository) -> list[Folder]:
    """The six role folders always, plus any other folder the account has."""
    stored = {folder.name: folder for folder in mailboxes.folders(account)}
    result = [
        stored.get(name, Folder(name=name, role=role, total=0, unread=0))
        for name, role in ROLE_FOLDERS.items()
    ]
    result.extend(folder for name, folder in sorted(stored.items()) if name not in ROLE_FOLDERS)
    return result


def list_messages(
    account: str, folder: str, limit: int, cursor: str | None, mailboxes: MailboxRepository
) -> Page:
    if folder not in ROLE_FOLDERS and folder not in {f.name for f in mailboxes.folders(account)}:
        raise FolderNotFound(folder)
    return mailboxes.list_folder(account, folder, max(1, min(limit, MAX_PAGE)), cursor)


def read_message(
    account: str, message_id: str, mailboxes: MailboxRepository, store: RawMessageStore
) -> MessageView:
    stored = mailboxes.get(account, message_id)
    return MessageView(stored=stored, content=read_content(store.get_raw(stored.raw_key)))


def read_raw(
    account: str, message_id: str, mailboxes: MailboxRepository, store: RawMessageStore
) -> bytes:
    # The mailbox lookup is the access check: raw keys are never taken from the caller.
    return store.get_raw(mailboxes.get(account, message_id).raw_key)
