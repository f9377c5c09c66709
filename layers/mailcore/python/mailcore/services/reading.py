"""What a user agent reads: folders, pages of messages, one message, its raw bytes,
its attachments, its delivery status, and search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.mailbox import ROLE_FOLDERS, Folder, Page, StoredMessage
from mailcore.domain.message import MessageContent
from mailcore.errors import InvalidRequest, MessageNotFound
from mailcore.parsing.bounded import attachment_content, read_content
from mailcore.parsing.header_lines import fields_named
from mailcore.parsing.limits import PARSE_LIMITS
from mailcore.ports import DeliveryLedger, MailboxReader, MessageStore, RawMessageStore
from mailcore.services.recipients import HostedDomains, hosted_candidate

if TYPE_CHECKING:
    from mailcore.authentication.display import AuthenticationShown

MAX_PAGE = 100
MAX_SEARCH_WORDS = 200
# Lambda answers at most 6 MB, and binary bodies travel base64-encoded (4/3 larger).
INLINE_BODY_LIMIT = 4 * 1024 * 1024
_AUTHENTICATION_FIELDS = frozenset({"authentication-results", "from"})


@dataclass(frozen=True)
class MessageView:
    stored: StoredMessage
    folder_name: str
    content: MessageContent
    authentication: AuthenticationShown | None = None


@dataclass(frozen=True)
class Download:
    """Bytes small enough to answer with, or a short-lived link to fetch them from."""

    content_type: str = ""
    filename: str | None = None
    data: bytes | None = None
    link: str | None = None


def list_mailboxes(account: str, mailboxes: MailboxReader) -> list[Folder]:
    """The six role folders always, then the account's other folders by name."""
    stored = {folder.id: folder for folder in mailboxes.folders(account)}
    result = [
        stored.get(name, Folder(id=name, name=name, role=role, total=0, unread=0))
        for name, role in ROLE_FOLDERS.items()
    ]
    result.extend(sorted((folder for folder in stored.values() if folder.role is None),
                         key=lambda folder: folder.name))
    return result


def folder_names(account: str, mailboxes: MailboxReader) -> dict[str, str]:
    return {folder.id: folder.name for folder in list_mailboxes(account, mailboxes)}


def folder_name(account: str, folder_id: str, mailboxes: MailboxReader) -> str:
    if folder_id in ROLE_FOLDERS:
        return folder_id
    return folder_names(account, mailboxes).get(folder_id, folder_id)


def page_limit(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def list_messages(account: str, folder_name: str, limit: int, cursor: str | None,
                  mailboxes: MailboxReader) -> tuple[Folder, Page]:
    folder = mailboxes.folder_named(account, folder_name)
    return folder, mailboxes.list_folder(account, folder.id, page_limit(limit), cursor)


def search(account: str, words: str, folder_name: str | None, limit: int, cursor: str | None,
           mailboxes: MailboxReader) -> Page:
    words = " ".join(words.split()).casefold()
    if not words or len(words) > MAX_SEARCH_WORDS:
        raise InvalidRequest(f"q has 1 to {MAX_SEARCH_WORDS} characters", "q")
    folder_id = mailboxes.folder_named(account, folder_name).id if folder_name else None
    return mailboxes.search(account, folder_id, words, page_limit(limit), cursor)


def read_message(account: str, message_id: str, mailboxes: MailboxReader,
                 store: RawMessageStore, authserv_id: str) -> MessageView:
    """The message for display, with what our edge's Authentication-Results field (the one
    with `authserv_id`, our hostname) says of it."""
    stored = mailboxes.get(account, message_id)
    raw = store.get_raw(stored.raw_key)
    return MessageView(stored=stored, folder_name=folder_name(account, stored.folder, mailboxes),
                       content=read_content(raw),
                       authentication=authentication_of(raw, authserv_id))


def authentication_of(raw: bytes, authserv_id: str) -> AuthenticationShown | None:
    # Imported when a message is read, not at every cold start of the API (its dataclasses
    # and the verdict's: 11 ms of import, measured with python -X importtime).
    from mailcore.authentication.display import authentication_shown

    fields = fields_named(raw, _AUTHENTICATION_FIELDS, PARSE_LIMITS)
    return authentication_shown(
        (value for name, value in fields if name == "authentication-results"),
        [value for name, value in fields if name == "from"], authserv_id)


def read_raw(account: str, message_id: str, mailboxes: MailboxReader,
             store: MessageStore) -> Download:
    # The mailbox lookup is the access check: raw keys are never taken from the caller.
    stored = mailboxes.get(account, message_id)
    if stored.size > INLINE_BODY_LIMIT:
        return Download(link=store.download_link(stored.raw_key))
    return Download("message/rfc822", None, data=store.get_raw(stored.raw_key))


def read_attachment(account: str, message_id: str, index: int, mailboxes: MailboxReader,
                    store: MessageStore) -> Download:
    stored = mailboxes.get(account, message_id)
    # Received and sent messages never change, so a large part decoded once is kept
    # (for a day) and not decoded again; a draft may change.
    accepted_id = stored.accepted_id
    key = store.part_key(accepted_id or stored.message_id, index)
    if accepted_id and stored.size > INLINE_BODY_LIMIT and store.exists(key):
        return Download(link=store.download_link(key))
    attachment = attachment_content(store.get_raw(stored.raw_key), index)
    if attachment is None:
        raise MessageNotFound(f"{message_id} has no attachment {index}")
    if len(attachment.data) <= INLINE_BODY_LIMIT:
        return Download(attachment.content_type, attachment.filename,
                        data=bytes(attachment.data))
    # Too large to answer with: into the store, and fetched from there.
    store.put_object(key, attachment.data, attachment.content_type, attachment.filename)
    return Download(link=store.download_link(key))


def delivery_status(account: str, message_id: str, mailboxes: MailboxReader,
                    store: RawMessageStore, ledger: DeliveryLedger,
                    domains: HostedDomains) -> list[RecipientStatus]:
    """Each envelope recipient's fate, for mail this account sent; nothing for other mail
    (its envelope would show another sender's Bcc recipients)."""
    stored = mailboxes.get(account, message_id)
    submitted_id = stored.accepted_id
    if submitted_id is None:
        return []  # a draft: never sent
    envelope = store.get_envelope(stored.raw_key)
    if envelope.submitted_by != account:
        return []
    remote = ledger.statuses_of_message(submitted_id)
    statuses = []
    for rcpt in dict.fromkeys(envelope.rcpt_tos):
        if hosted_candidate(rcpt, domains) is not None:
            statuses.append(RecipientStatus(rcpt, RecipientState.DELIVERED, attempts=1,
                                            reply="filed in a hosted mailbox"))
        else:
            statuses.append(remote.get(rcpt, RecipientStatus(rcpt, RecipientState.QUEUED)))
    return statuses
