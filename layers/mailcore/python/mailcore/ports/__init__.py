"""What the services need from the outside world. Adapters live in `adapters/`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

# In their own module: deliver_mail's cold start needs these two and none of the
# protocols here (3 ms; tests/unit/test_import_graph.py).
from mailcore.domain.next_hop import NextHop as NextHop
from mailcore.domain.next_hop import RecipientReply as RecipientReply
from mailcore.ports.delivery import DeliveryLedger as DeliveryLedger
from mailcore.ports.delivery import DeliveryQueue as DeliveryQueue
from mailcore.ports.delivery import NextHopResolver as NextHopResolver
from mailcore.ports.delivery import SmtpSender as SmtpSender
from mailcore.ports.delivery import Suppressions as Suppressions
from mailcore.ports.junk import JunkFilterStore as JunkFilterStore
from mailcore.ports.junk import JunkLessons as JunkLessons

if TYPE_CHECKING:
    # Types only: a handler that imports the ports it uses loads no domain module it does
    # not (deliver_mail never reads a mailbox; tests/unit/test_import_graph.py).
    from datetime import datetime

    from mailcore.authentication.signing_keys import SigningKey
    from mailcore.domain.envelope import Envelope
    from mailcore.domain.mailbox import Folder, FolderChanges, Page, StoredMessage, UidEntry
    from mailcore.imap_view.view import ImapView


class RawMessageStore(Protocol):
    """Durable store of messages exactly as received, with their envelopes."""

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        """Store durably and return the message's key; raise StorageUnavailable on any fault."""
        ...

    def get_raw(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """raw[start:end] of the message at `key` in one read of those bytes alone (IMAP's
        header section, or one part of a large message); MessageNotFound when absent."""
        ...

    def get_envelope(self, key: str) -> Envelope: ...

    def get_message(self, key: str) -> tuple[Envelope, bytes]:
        """Envelope and raw bytes together (one read where the store allows)."""
        ...


class MessageWriter(Protocol):
    """How the edge stores what it accepts, from its event loop (it never blocks it)."""

    async def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        """As RawMessageStore.put: durable on return; StorageUnavailable on any fault."""
        ...


@dataclass(frozen=True)
class UploadForm:
    url: str
    fields: dict[str, str]  # form fields to send before the file's


class ObjectStore(Protocol):
    """The rest of what the mailbox API keeps in the raw store: drafts, uploads, links.
    Services ask the store where each thing lives (draft_key, part_key, upload_key,
    appended_key); every store answers with the one layout of mailcore.s3_keys."""

    def draft_key(self, draft_id: str) -> str: ...

    def part_key(self, accepted_id: str, index: int) -> str:
        """Where a large decoded part of an accepted (never changing) message is kept."""
        ...

    def upload_key(self, account: str, upload_id: str) -> str:
        """An upload's place, under its owner: another account's upload id finds nothing."""
        ...

    def appended_key(self, message_id: str) -> str:
        """Where a message a client put into a folder itself (IMAP APPEND) is kept: like
        accepted mail its bytes never change, but it is not mail to file or deliver."""
        ...

    def put_object(self, key: str, data: bytes | bytearray, content_type: str,
                   filename: str | None = None) -> None:
        """Store; `filename` makes downloads of it an attachment of that name."""
        ...

    def exists(self, key: str) -> bool: ...

    def get_object(self, key: str, max_size: int) -> bytes:
        """Raise MessageNotFound when absent, TooLarge when over max_size."""
        ...

    def delete_message(self, key: str) -> None:
        """Delete a message (and its envelope); deleting what is gone does nothing."""
        ...

    def download_link(self, key: str) -> str:
        """A short-lived URL to GET the object, with the content type (and file name) it
        was stored with: for bodies over the API's response limit."""
        ...

    def upload_form(self, key: str, content_type: str, max_size: int) -> UploadForm:
        """A short-lived form to POST one object of this content type and at most
        `max_size` bytes to (the store refuses a larger one)."""
        ...


class MessageStore(RawMessageStore, ObjectStore, Protocol):
    """The raw store as the API uses it: messages, and drafts, parts, uploads and links."""


class MailboxReader(Protocol):
    """Reading an account's mailbox: messages, folders, search."""

    def get(self, account: str, message_id: str) -> StoredMessage:
        """Raise MessageNotFound unless the message is in this account's mailbox."""
        ...

    def raw_keys(self, account: str, message_ids: Sequence[str]) -> dict[str, str]:
        """Where each of these messages' bytes are (by id); a message not in the mailbox
        is left out. Batched: at most len(message_ids)/100 + 1 table requests."""
        ...

    def list_folder(
        self, account: str, folder: str, limit: int, cursor: str | None
    ) -> Page:
        """Newest first; a cursor not given out for this folder raises InvalidCursor."""
        ...

    def list_received_before(self, account: str, folder: str, before: datetime, limit: int,
                             cursor: str | None) -> Page:
        """The folder's messages received before `before`, oldest first, a page at a time
        that reads O(page) items whatever the folder holds (Junk emptied of old mail). Give
        the same `before` with the cursor; a cursor not given out for this folder raises
        InvalidCursor."""
        ...

    def folders(self, account: str) -> list[Folder]: ...

    def folder_named(self, account: str, name: str) -> Folder:
        """Raise FolderNotFound."""
        ...

    def folder_by_id(self, account: str, folder_id: str) -> Folder:
        """The folder with this id, whatever its name is now (a rename keeps the id; a
        folder made again under an old name has another): what an IMAP session selected.
        A role folder always exists; FolderNotFound for a user folder that is gone."""
        ...

    def search(self, account: str, folder: str | None, words: str, limit: int,
               cursor: str | None) -> Page:
        """Messages whose from, to, subject or snippet contain `words` (lower case),
        newest first, reading a bounded number of items; a page may be short, even
        empty, while a cursor says there is more to look at."""
        ...

    def list_by_uid(self, account: str, folder: str, first_uid: int,
                    limit: int | None = None) -> list[UidEntry]:
        """The folder's messages with a UID of `first_uid` or more, ascending (what a
        client asks with UID FETCH n:*): at most `limit` of them, or with None every one,
        read in pages as large as the store gives (a folder's listing when it is
        selected)."""
        ...

    def changes_since(self, account: str, folder: str, modseq: int,
                      read_highest: int | None = None) -> FolderChanges:
        """What changed in the folder after `modseq` (its highest MODSEQ then).
        `read_highest`: the folder's MODSEQ as its item was read earlier in the same
        command, which spares reading the item again (a change made since is in the change
        log read here; the MODSEQ answered may then be behind by changes that have no
        entry there, which only makes the next call read some again)."""
        ...

    def highest_modseq(self, account: str, folder: str) -> int:
        """The folder's MODSEQ, read cheaply and possibly a moment behind: what a watcher
        polls to learn that something changed (then it asks changes_since)."""
        ...


class MailboxWriter(Protocol):
    """Changing an account's mailbox. Folder counts stay exact under concurrent changes."""

    def file(self, message: StoredMessage, *, holding: int = 0) -> bool:
        """File once: False when this message is already in this account's mailbox.
        The message gets the folder's next UID in the same write that makes it visible.
        `holding` > 0: RawReferences.hold(message.raw_key, holding), in that same write
        (the first copy of a message: every reference is then held before any copy
        exists, without a write of its own)."""
        ...

    def file_together(self, arrivals: Sequence[tuple[StoredMessage, int]]) -> list[bool]:
        """file(message, holding=holding) for each (message, holding), in that order, with
        each one's answer; in fewer writes than one each (messages for one folder may
        share one). Raises as file() would, and then some of them may be filed."""
        ...

    def create_folder(self, account: str, name: str) -> Folder:
        """Raise Conflict when the name is taken."""
        ...

    def rename_folder(self, account: str, folder: Folder, new_name: str) -> Folder:
        """Rename the folder and the folders under it; Conflict when a new name is taken."""
        ...

    def delete_folder(self, account: str, folder: Folder) -> None:
        """Raise Conflict unless the folder is empty."""
        ...

    def open_folder(self, account: str, folder_id: str) -> Folder:
        """The folder with its UIDVALIDITY given, once: a role folder before its first
        message has none yet (nor does a folder made before folders had UIDs).
        FolderNotFound for a user folder that is gone."""
        ...

    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        """Apply `change` to the current state of the message, atomically with the folder
        counts it moves; `change` may run again when another writer came first. A move
        into a folder that was deleted meanwhile raises FolderNotFound. Every change
        advances the folder's MODSEQ; a move gives the message a new UID in its new
        folder and expunges the old one. A message filed before folders had UIDs gets
        one at its first update, even one that changes nothing else. A move also sets the
        junk keywords it teaches and when it entered the folder (domain.junk.after_move:
        folder_since), whoever asked for it."""
        ...

    def remove(self, account: str, message_id: str,
               where: tuple[str, int] | None = None) -> tuple[StoredMessage, bool]:
        """Delete the stored message for good, giving back its reference to the raw
        bytes; True when nothing needs those bytes any more (the caller deletes them:
        services.changes.remove_for_good is the one that does). `where` (folder id, UID):
        only while the message is still there under that UID, in the same conditional
        write, else MessageNotFound (an IMAP client's view of a folder may be stale)."""
        ...

    def copy(self, account: str, message_id: str, folder: str) -> StoredMessage:
        """A second copy of the message in `folder` (another id, the folder's next UID),
        holding one more reference to the same raw bytes in the same write, with the junk
        keywords the copy teaches (a copy into Junk: $Junk), in its folder since now.
        Raise MessageNotFound when the message, or its bytes, are gone; FolderNotFound."""
        ...


class Mailboxes(MailboxReader, MailboxWriter, Protocol):
    """For what reads and changes at once (a move finds its folder, then moves)."""


@dataclass(frozen=True)
class KeptView:
    """A message's IMAP view to keep: whose, which message, and where its bytes are (a view
    too large for the table goes beside them)."""

    account: str
    message_id: str
    raw_key: str
    view: ImapView


class ImapViews(Protocol):
    """Each stored message's IMAP view (mailcore/imap_view), kept beside its item: written
    when its bytes are, read by IMAP in batches, gone with the message."""

    def put(self, views: Sequence[KeptView], *, if_missing: bool = False) -> None:
        """Keep these views (those too large to keep are left out: mailcore/imap_view/
        view.py MAX_VIEW_TEXT). The same bytes give the same view, so a repeat is harmless.
        `if_missing`: for views made from bytes read a while ago (IMAP's first FETCH or
        SEARCH of a message, the backfill): each kept only while its message still exists
        and has no view of the same size in the current format, so that it never takes
        the place of the view of a draft saved meanwhile, nor outlives its message."""
        ...

    def forget(self, account: str, message_id: str) -> None:
        """Drop a message's view before its bytes are written again (a draft saved): should
        the new view not be kept, the message has none, and IMAP makes it from the bytes."""
        ...

    def get_many(self, account: str, message_ids: Sequence[str]) -> dict[str, ImapView]:
        """The kept views of these messages (by id) in the current format; a message
        without one, or with one of an older format, is left out (make it from the bytes
        and put it). Batched: at most len(message_ids)/100 + 1 table requests, and one
        object read for each view too large for the table."""
        ...


@dataclass(frozen=True)
class Token:
    token: str
    expires_in: int


@dataclass(frozen=True)
class LoginAttempt:
    """One login's reservation: the counters it was counted in, each by the start of the
    window it was counted in (a reservation never touches a later window)."""

    address: str
    client: str
    windows: tuple[int, ...]


class LoginThrottle(Protocol):
    """Logins per address and per client address, counted alike on every port (the API,
    SMTP AUTH, IMAP), so guessing gets slow everywhere at once. Each login reserves its
    attempt before its password is checked, so simultaneous guesses are counted as they
    come in, not after they were checked."""

    def reserve(self, address: str, client: str) -> LoginAttempt:
        """Count one attempt against the address and the client, atomically: Throttled
        when either has had its limit of failures in this window, LoginsInFlight when
        only attempts still being checked fill it (try again in a moment)."""
        ...

    def failed(self, attempt: LoginAttempt) -> None:
        """The password was wrong: the attempt stays counted, as a failure."""
        ...

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The attempt is given back, and the address's earlier failures cleared (never
        the client's: they may be guesses at other accounts, nor attempts in flight)."""
        ...

    def abandoned(self, attempt: LoginAttempt) -> None:
        """The password could not be checked (the directory was unavailable): the
        attempt is given back."""
        ...


class RawReferences(Protocol):
    """Who still needs a message's raw bytes: its mailbox copies and its delivery jobs.
    A copy deleted for good gives its reference back in MailboxWriter.remove."""

    def hold(self, raw_key: str, references: int) -> bool:
        """Hold every reference the message will have, before its first copy is filed;
        a repeat (filing tried again) changes nothing. True when held now: no earlier try
        got past this point, so none filed a copy or queued a job."""
        ...

    def release_job(self, raw_key: str, domain: str) -> bool:
        """The delivery job for `domain` is done with the bytes (counted once, however
        often said); True when nothing needs them any more: the caller deletes them."""
        ...

    def released(self, raw_key: str) -> bool:
        """True once every reference was given back: the bytes are gone, or going."""
        ...


class SendingLimit(Protocol):
    """Recipients an account may send to in an hour, on every way of sending."""

    def charge(self, account: str, recipients: int) -> None:
        """Count `recipients` for this hour; raise SendingLimitReached, counting nothing,
        when they would go over the limit."""
        ...


class SigningKeys(Protocol):
    """Each hosted domain's DKIM keys to sign with now (signing_keys.keys_for_domain)."""

    def for_domain(self, domain: str) -> list[SigningKey]: ...


MAX_ACCOUNTS_PER_PAGE = 60  # Cognito's ListUsers gives at most 60 users a request


@dataclass(frozen=True)
class AccountPage:
    accounts: tuple[str, ...]  # addresses, lower case
    cursor: str | None  # opaque; None on the last page


class AccountListing(Protocol):
    """Every account, a page at a time (what a job run for each account walks). Apart from
    AccountDirectory: what logs in and checks recipients never lists."""

    def list_accounts(self, limit: int, cursor: str | None) -> AccountPage:
        """At most `limit` accounts (1 to MAX_ACCOUNTS_PER_PAGE), in the directory's own
        order; `cursor` from the page before."""
        ...


class AccountDirectory(Protocol):
    def is_account(self, address: str) -> bool: ...

    def authenticate(self, address: str, password: str) -> Token:
        """Raise AuthenticationFailed for a wrong password or unknown account alike."""
        ...
