"""Changing stored messages: flags, moves, deletion (to Trash, then for good)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from mailcore.domain.junk import JUNK_KEYWORD, NOT_JUNK_KEYWORD
from mailcore.domain.mailbox import TRASH, StoredMessage
from mailcore.ports import Mailboxes, ObjectStore


@dataclass(frozen=True)
class MessageChange:
    seen: bool | None = None
    flagged: bool | None = None
    answered: bool | None = None
    mailbox: str | None = None  # a folder name: move there
    junk: bool | None = None  # True: $Junk, False: $NotJunk (the other one removed)


class Deletion(StrEnum):
    MOVED_TO_TRASH = "moved_to_trash"
    DELETED = "deleted"


def change_message(account: str, message_id: str, change: MessageChange,
                   mailboxes: Mailboxes) -> StoredMessage:
    target = mailboxes.folder_named(account, change.mailbox).id if change.mailbox else None
    wanted = {"seen": change.seen, "flagged": change.flagged, "answered": change.answered}

    def apply(message: StoredMessage) -> StoredMessage:
        flags = set(message.flags)
        for flag, on in wanted.items():
            if on is True:
                flags.add(flag)
            elif on is False:
                flags.discard(flag)
        if change.junk is not None:
            flags = _with_junk_keyword(flags, change.junk)
        return replace(message, flags=frozenset(flags), folder=target or message.folder)

    return mailboxes.update(account, message_id, apply)


def _with_junk_keyword(flags: set[str], junk: bool) -> set[str]:
    # Keywords are case-insensitive (RFC 3501 2.3.2): `$junk` set over IMAP is the same one.
    lessons = {JUNK_KEYWORD.casefold(), NOT_JUNK_KEYWORD.casefold()}
    kept = {flag for flag in flags if flag.casefold() not in lessons}
    kept.add(JUNK_KEYWORD if junk else NOT_JUNK_KEYWORD)
    return kept


def delete_message(account: str, message_id: str, mailboxes: Mailboxes,
                   objects: ObjectStore) -> Deletion:
    """Outside Trash: move to Trash. In Trash: delete for good, and the raw bytes with
    the last reference to them (copies still to be filed and pending deliveries hold
    theirs: see RawReferences)."""
    if mailboxes.get(account, message_id).folder != TRASH:
        mailboxes.update(account, message_id, lambda message: replace(message, folder=TRASH))
        return Deletion.MOVED_TO_TRASH
    remove_for_good(account, message_id, mailboxes, objects)
    return Deletion.DELETED


def remove_for_good(account: str, message_id: str, mailboxes: Mailboxes,
                    objects: ObjectStore,
                    where: tuple[str, int] | None = None) -> StoredMessage:
    """The one way a stored message goes for good (the API's delete from Trash, a draft
    sent, IMAP's EXPUNGE and DELETE): its raw bytes go only when this copy gave back the
    last reference to them, since other copies (another account's, a copy in another
    folder) and delivery jobs share them. `where`: as MailboxWriter.remove."""
    removed, unreferenced = mailboxes.remove(account, message_id, where)
    if unreferenced:
        objects.delete_message(removed.raw_key)
    return removed
