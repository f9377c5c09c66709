"""Messages a mail client puts into a folder itself (IMAP APPEND: a copy of what it sent,
into Sent; a draft, into Drafts) and copies of stored messages (IMAP COPY); each with its
IMAP view, as filed mail has."""

from __future__ import annotations

from datetime import UTC, datetime

from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.errors import MessageNotFound
from mailcore.parsing.bounded import summarise
from mailcore.ports import ImapViews, Mailboxes, ObjectStore, RawReferences
from mailcore.services.imap_views import keep_view_of, share_view


def append_message(account: str, folder: str, raw: bytes, flags: frozenset[str],
                   received_at: datetime, store: ObjectStore, references: RawReferences,
                   mailboxes: Mailboxes, views: ImapViews) -> StoredMessage:
    """Store the bytes, then file them as a message of `folder` (a folder id); the stored
    message, with its UID there. Whatever the bytes, they are kept and shown (a message
    that does not parse is filed with its parse problem, as received mail is)."""
    message_id = new_message_id()
    key = store.appended_key(message_id)
    store.put_object(key, raw, "message/rfc822")
    references.hold(key, 1)  # its one copy
    mailboxes.file(StoredMessage(account=account, message_id=message_id, folder=folder,
                                 received_at=received_at, raw_key=key, size=len(raw),
                                 summary=summarise(raw), flags=flags, accepted_id=message_id,
                                 # In its folder from now, whatever date the client gave
                                 # (Junk keeps what it holds for junk_days from then).
                                 folder_since=datetime.now(UTC)))
    keep_view_of(views, account, message_id, key, raw)
    return mailboxes.get(account, message_id)


def copy_message(account: str, message_id: str, folder: str, store: ObjectStore,
                 references: RawReferences, mailboxes: Mailboxes, views: ImapViews,
                 where: tuple[str, int] | None = None) -> StoredMessage:
    """A copy in `folder`. Accepted bytes never change, so a copy shares them, and the
    source's view; a draft's are written again on every save, so a copy of a draft gets
    bytes of its own, and their view.
    `where` (folder id, UID): the source must still be there under that UID, else
    MessageNotFound (an IMAP client copies what its view of a folder holds)."""
    source = mailboxes.get(account, message_id)
    if where is not None and where != (source.folder, source.uid):
        raise MessageNotFound(message_id)
    if source.accepted_id is not None:
        copied = mailboxes.copy(account, message_id, folder)
        # A source without a view in the current format (filed before views, or of an
        # older format) leaves its copy without one too: making it here would read the
        # whole message for a COPY (a client's move of a thousand messages would read them
        # all), where the first FETCH of the copy makes it once, if the copy is ever
        # fetched, and the backfill makes both.
        share_view(views, account, message_id, copied.message_id, copied.raw_key)
        return copied
    raw = store.get_object(source.raw_key, max(source.size, 1))
    return append_message(account, folder, raw, source.flags, source.received_at, store,
                          references, mailboxes, views)
