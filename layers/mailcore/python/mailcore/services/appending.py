"""Messages a mail client puts into a folder itself (IMAP APPEND: a copy of what it sent,
into Sent; a draft, into Drafts) and copies of stored messages (IMAP COPY)."""

from __future__ import annotations

from datetime import datetime

from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.errors import MessageNotFound
from mailcore.parsing.bounded import summarise
from mailcore.ports import Mailboxes, ObjectStore, RawReferences


def append_message(account: str, folder: str, raw: bytes, flags: frozenset[str],
                   received_at: datetime, store: ObjectStore, references: RawReferences,
                   mailboxes: Mailboxes) -> StoredMessage:
    """Store the bytes, then file them as a message of `folder` (a folder id); the stored
    message, with its UID there. Whatever the bytes, they are kept and shown (a message
    that does not parse is filed with its parse problem, as received mail is)."""
    message_id = new_message_id()
    key = store.appended_key(message_id)
    store.put_object(key, raw, "message/rfc822")
    references.hold(key, 1)  # its one copy
    mailboxes.file(StoredMessage(account=account, message_id=message_id, folder=folder,
                                 received_at=received_at, raw_key=key, size=len(raw),
                                 summary=summarise(raw), flags=flags, accepted_id=message_id))
    return mailboxes.get(account, message_id)


def copy_message(account: str, message_id: str, folder: str, store: ObjectStore,
                 references: RawReferences, mailboxes: Mailboxes,
                 where: tuple[str, int] | None = None) -> StoredMessage:
    """A copy in `folder`. Accepted bytes never change, so a copy shares them; a draft's
    are written again on every save, so a copy of a draft gets bytes of its own.
    `where` (folder id, UID): the source must still be there under that UID, else
    MessageNotFound (an IMAP client copies what its view of a folder holds)."""
    source = mailboxes.get(account, message_id)
    if where is not None and where != (source.folder, source.uid):
        raise MessageNotFound(message_id)
    if source.accepted_id is not None:
        return mailboxes.copy(account, message_id, folder)
    raw = store.get_object(source.raw_key, max(source.size, 1))
    return append_message(account, folder, raw, source.flags, source.received_at, store,
                          references, mailboxes)

