"""pymap's backend interfaces on mailpipe's mailboxes: the folders, messages and flags the
API shows, read and changed through the same ports. Every storage call is blocking
(boto3), so each runs on the edge's thread pool, never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymap.backend.mailbox import MailboxDataInterface, MailboxSetInterface
from pymap.backend.session import BaseSession
from pymap.bytes import Writeable
from pymap.concurrent import Event
from pymap.config import BackendCapability, IMAPConfig
from pymap.exceptions import (
    InvalidAuth,
    MailboxHasChildren,
    MailboxNotFound,
    MailboxReadOnly,
    NotAllowedError,
    TemporaryFailure,
)
from pymap.flags import FlagOp
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.interfaces.message import CachedMessage
from pymap.interfaces.token import TokensInterface
from pymap.mailbox import MailboxSnapshot
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.parsing.message import AppendMessage
from pymap.parsing.response import ResponseBye, ResponseCode, ResponseNo
from pymap.parsing.specials import (
    FetchAttribute,
    FetchRequirement,
    ObjectId,
    SearchKey,
    SequenceSet,
)
from pymap.parsing.specials.flag import Flag, Recent, Wildcard, get_system_flags
from pymap.search import SearchParams
from pymap.selected import SelectedMailbox, SelectedSet
from pymap.token import AllTokens
from pymap.user import UserMetadata
from pysasl.creds.server import ServerCredentials
from pysasl.identity import Identity

from edge.imap import search, structure
from edge.imap.flags import imap_flags, stored_flags
from edge.imap.listing import FolderTree
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    INBOX,
    ROLE_FOLDERS,
    Folder,
    FolderRole,
    StoredMessage,
    UidEntry,
    folder_name_problem,
    role_folder_id,
)
from mailcore.errors import (
    AuthenticationFailed,
    Conflict,
    FolderNotFound,
    MessageNotFound,
    Throttled,
    TransientFailure,
)
from mailcore.ports import AccountDirectory, LoginThrottle, Mailboxes, MessageStore, RawReferences
from mailcore.services.appending import append_message, copy_message
from mailcore.services.changes import remove_for_good
from mailcore.services.login import log_in

T = TypeVar("T")
IMAP_INBOX = "INBOX"  # RFC 3501 5.1: INBOX in any case is the Inbox
LISTING_PAGE = 1000  # UID entries read per query when a client selects a folder
RECENT_CHANGES = 50  # changes read again after a SELECT's listing (see update_selected)
IDLE_POLL_SECONDS = 2.0  # how often an idle client's folder is looked at (issue: < 5 s)
SEARCH_BATCH = 100  # messages SEARCH tests per trip to the thread pool
SPECIAL_USE = {FolderRole.SENT: b"Sent", FolderRole.DRAFTS: b"Drafts",
               FolderRole.TRASH: b"Trash", FolderRole.JUNK: b"Junk",
               FolderRole.ARCHIVE: b"Archive"}  # pymap adds the backslash
SPECIAL_USE_ATTRIBUTES = frozenset(SPECIAL_USE.values())


class Blocking:
    """Runs a blocking storage call on the edge's thread pool and awaits it."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def __call__(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor,
                                              functools.partial(function, *args))
        except TransientFailure as exc:
            raise TemporaryFailure("storage unavailable, try again later") from exc


class FolderWatch:
    """Tells idle clients that their folder changed, with one poll per watched folder in
    this process however many connections idle on it (a phone, a laptop and a tablet on
    one Inbox cost what one does): each poll is one small, eventually consistent read of
    the folder's MODSEQ; only when it moved do the clients read what changed."""

    def __init__(self, storage: ImapStorage, interval: float = IDLE_POLL_SECONDS) -> None:
        self._storage = storage
        self._interval = interval
        self._watches: dict[tuple[str, str], _Watch] = {}

    async def wait(self, account: str, folder: str, known: int, stop: Event) -> None:
        """Return once the folder's MODSEQ is above `known`, or `stop` is set."""
        key = (account, folder)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch()
            watch.task = asyncio.create_task(self._poll(key, watch))
        watch.waiters += 1
        stopping = asyncio.create_task(stop.wait())
        try:
            while watch.modseq <= known and not stop.is_set():
                changed = asyncio.create_task(watch.changed.wait())
                try:
                    await asyncio.wait({changed, stopping},
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
        finally:
            # Also when the connection goes mid-IDLE: no task is left waiting behind it.
            stopping.cancel()
            watch.waiters -= 1

    async def _poll(self, key: tuple[str, str], watch: _Watch) -> None:
        try:
            while watch.waiters or watch.fresh:
                watch.fresh = False
                with contextlib.suppress(TemporaryFailure):
                    modseq = await self._storage.blocking(self._storage.mailboxes.highest_modseq,
                                                          *key)
                    if modseq > watch.modseq:
                        watch.modseq = modseq
                        watch.changed.set()
                        watch.changed = asyncio.Event()
                await asyncio.sleep(self._interval)
        finally:
            del self._watches[key]

    @property
    def watched(self) -> int:
        return len(self._watches)


@dataclass
class _Watch:
    modseq: int = 0
    waiters: int = 0
    fresh: bool = True  # not yet polled: keeps the task alive until its first read
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class ImapStorage:
    mailboxes: Mailboxes
    store: MessageStore
    references: RawReferences
    directory: AccountDirectory
    throttle: LoginThrottle
    blocking: Blocking


def give_uids(mailboxes: Mailboxes, account: str, folder: str) -> int:
    """UIDs for a folder's messages filed before folders had them (an update that changes
    nothing gives one); how many got one. Reads the folder a page at a time."""
    given, cursor = 0, None
    while True:
        page = mailboxes.list_folder(account, folder, LISTING_PAGE, cursor)
        for message in page.messages:
            if not message.uid:
                with contextlib.suppress(MessageNotFound):
                    mailboxes.update(account, message.message_id, lambda same: same)
                    given += 1
        cursor = page.cursor
        if cursor is None:
            return given


def imap_name(folder: Folder) -> str:
    return IMAP_INBOX if folder.id == INBOX else folder.name


class _Answer(Writeable):
    """An answer computed when the message was loaded: writing it is writing bytes."""

    def __init__(self, compute: Callable[[], bytes]) -> None:
        self._compute = compute
        self._data: bytes | None = None

    def __bytes__(self) -> bytes:
        if self._data is None:
            self._data = self._compute()
        return self._data


class _StructureAnswer(_Answer):
    """BODY (the structure without extension data) and, as `.extended`, BODYSTRUCTURE."""

    def __init__(self, compute: Callable[[], bytes], extended: _Answer) -> None:
        super().__init__(compute)
        self.extended = extended


class _SearchDate:
    def __init__(self, value: datetime) -> None:
        self.datetime = value


class _EnvelopeAnswer(_Answer):
    """ENVELOPE as written, with the fields pymap's SEARCH reads (decoded strings)."""

    def __init__(self, parsed: structure.Envelope) -> None:
        super().__init__(lambda: bytes(parsed))
        self.parsed = parsed

    # Decoded only when SEARCH asks: a FETCH writes the bytes and never needs them.
    @functools.cached_property
    def subject(self) -> str | None:
        subject = self.parsed.subject
        return structure.decoded_header(subject) if subject is not None else None

    @functools.cached_property
    def date(self) -> _SearchDate | None:
        return _search_date(self.parsed.date)

    def _listed(self, found: list[structure.Address]) -> list[str]:
        return [str(address) for address in found]

    from_ = functools.cached_property(lambda self: self._listed(self.parsed.from_))
    sender = functools.cached_property(lambda self: self._listed(self.parsed.sender))
    reply_to = functools.cached_property(lambda self: self._listed(self.parsed.reply_to))
    to = functools.cached_property(lambda self: self._listed(self.parsed.to))
    cc = functools.cached_property(lambda self: self._listed(self.parsed.cc))
    bcc = functools.cached_property(lambda self: self._listed(self.parsed.bcc))


def _search_date(value: bytes | None) -> _SearchDate | None:
    if value is None or len(value) > 200:  # longer is no date (RFC 5322 3.3)
        return None
    try:
        return _SearchDate(email.utils.parsedate_to_datetime(value.decode("latin-1")))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


class RawLoadedMessage(BaseLoadedMessage):
    """pymap's loaded message, every part of it read from the raw bytes through one index
    of offsets (edge/imap/structure.py says why), built in the thread that reads the
    message. prepare() computes the answers a FETCH asked for in that thread too, so the
    event loop only writes bytes; whatever is asked later (SEARCH) is computed when asked,
    from the same index."""

    def __init__(self, message: ImapMessage, requirement: FetchRequirement,
                 raw: bytes) -> None:
        super().__init__(message, requirement, None)
        self._raw = raw
        self._part = structure.split_message(raw)
        self._answers: dict[tuple[Any, ...], Any] = {}

    def _answer(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key not in self._answers:
            self._answers[key] = compute()
        return self._answers[key]  # type: ignore[no-any-return]

    def prepare(self, attributes: Iterable[FetchAttribute]) -> None:
        """Compute now what writing these FETCH items will ask for."""
        for attribute in attributes:
            name, section = attribute.value, attribute.section
            if name == b"ENVELOPE":
                bytes(self.get_envelope_structure())
            elif name == b"BODYSTRUCTURE":
                bytes(self.get_body_structure().extended)
            elif name == b"BODY" and section is None:
                bytes(self.get_body_structure())
            elif section is not None:
                binary = name.startswith(b"BINARY")
                specifier, parts = section.specifier, section.parts
                if specifier is None:
                    bytes(self.get_body(parts, binary))
                elif specifier == b"MIME":
                    bytes(self.get_headers(parts))
                elif specifier == b"TEXT":
                    bytes(self.get_message_text(parts))
                elif specifier == b"HEADER":
                    bytes(self.get_message_headers(parts))
                else:
                    bytes(self.get_message_headers(parts, section.headers,
                                                   specifier == b"HEADER.FIELDS.NOT"))

    def __bytes__(self) -> bytes:
        return self._raw

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section:
            return len(self._raw)
        part = structure.section(self._part, list(section))
        return len(structure.section_body(part)) if part is not None else 0

    def get_envelope_structure(self) -> Any:
        return self._answer(("envelope",), lambda: _EnvelopeAnswer(
            structure.read_envelope(self._part)))

    def get_body_structure(self) -> Any:
        def answer() -> _StructureAnswer:
            return _StructureAnswer(
                lambda: structure.body_structure(self._part, extended=False),
                _Answer(lambda: structure.body_structure(self._part)))

        return self._answer(("structure",), answer)

    def get_header(self, name: bytes) -> Sequence[str]:
        value = structure.header_value(self._part, name)
        return [structure.decoded_header(value)] if value is not None else []

    def get_headers(self, section: Sequence[int]) -> Writeable:
        def answer() -> Writeable:
            part = structure.section(self._part, list(section))
            return Writeable.wrap(part.header_block) if part else Writeable.empty()

        return self._answer(("mime", tuple(section)), answer)

    def get_body(self, section: Sequence[int] | None = None,
                 binary: bool = False) -> Writeable:
        return self._answer(("body", tuple(section or ()), binary),
                            lambda: Writeable.wrap(self._body(section, binary)))

    def _body(self, section: Sequence[int] | None, binary: bool) -> bytes:
        if not section:
            # The whole message is its stored bytes, exactly.
            root = self._part
            if not binary or root.is_multipart:
                return self._raw
            return root.header_block + structure.decoded_body(root)
        # A part's body ends before the line break that precedes the next boundary
        # (RFC 2046 5.1.1), where pymap's would keep it.
        part = structure.section(self._part, list(section))
        if part is None:
            return b""
        if binary and not part.is_multipart:
            return structure.decoded_body(part)
        return structure.section_body(part)

    def _message_at(self, section: Sequence[int] | None) -> structure.Part | None:
        """The message whose HEADER or TEXT a section names: the whole message, or the
        one a message/rfc822 part encloses."""
        if not section:
            return self._part
        part = structure.section(self._part, list(section))
        return structure.enclosed(part) if part is not None else None

    def get_message_headers(self, section: Sequence[int] | None = None,
                            subset: Collection[bytes] | None = None,
                            inverse: bool = False) -> Writeable:
        def answer() -> Writeable:
            message = self._message_at(section)
            if message is None:
                return Writeable.empty()
            names = list(subset) if subset is not None else None
            return Writeable.wrap(structure.header_fields(message, names, inverse))

        key = ("header", tuple(section or ()), frozenset(subset or ()), subset is None,
               inverse)
        return self._answer(key, answer)

    def get_message_text(self, section: Sequence[int] | None = None) -> Writeable:
        def answer() -> Writeable:
            message = self._message_at(section)
            if message is None:
                return Writeable.empty()
            return Writeable.wrap(self._raw[message.body_start:message.end])

        return self._answer(("text", tuple(section or ())), answer)

    def contains(self, value: bytes) -> bool:
        """SEARCH BODY and TEXT as pymap reads them: every part's header, and the body of
        every text part, searched in place."""
        pattern = re.compile(re.escape(value), re.IGNORECASE)
        raw = self._raw
        for part in structure.walk(self._part):
            if pattern.search(raw, part.start, part.body_start) is not None:
                return True
            if part.kind[0] == b"text" and pattern.search(raw, part.body_start,
                                                          part.end) is not None:
                return True
        return False


class ImapMessage(BaseMessage):
    """A message as listed by UID; its bytes are read from the store only when a FETCH
    or SEARCH needs more than flags, dates and sizes."""

    __slots__ = ["_account", "_storage", "entry"]

    def __init__(self, entry: UidEntry, account: str, storage: ImapStorage,
                 expunged: bool = False) -> None:
        super().__init__(entry.uid, entry.received_at, imap_flags(entry.flags),
                         email_id=ObjectId(entry.message_id.encode()), expunged=expunged)
        self.entry = entry
        self._account = account
        self._storage = storage

    def expunged_copy(self) -> ImapMessage:
        return ImapMessage(self.entry, self._account, self._storage, expunged=True)

    async def load_content(self, requirement: FetchRequirement,
                           attributes: Sequence[FetchAttribute] = ()) -> BaseLoadedMessage:
        """The message's bytes and index; with the FETCH items about to be written, their
        answers too."""
        if requirement.has_none(FetchRequirement.CONTENT):
            return BaseLoadedMessage(self, requirement, None)
        return await self._storage.blocking(self._loaded, requirement, attributes)

    def read_raw(self) -> bytes | None:
        """The message's bytes (a blocking read), or None once it is gone."""
        try:
            stored = self._storage.mailboxes.get(self._account, self.entry.message_id)
            return self._storage.store.get_raw(stored.raw_key)
        except MessageNotFound:
            return None

    def _loaded(self, requirement: FetchRequirement,
                attributes: Sequence[FetchAttribute]) -> RawLoadedMessage:
        # Read, indexed and answered off the event loop: the time grows with the message.
        stored = self._storage.mailboxes.get(self._account, self.entry.message_id)
        raw = self._storage.store.get_raw(stored.raw_key)
        loaded = RawLoadedMessage(self, requirement, raw)
        loaded.prepare(attributes)
        return loaded


def _passing(messages: list[tuple[int, ImapMessage]], selected: SelectedMailbox,
             test: search.Test) -> list[tuple[int, ImapMessage]]:
    session_flags = selected.session_flags
    return [(seq, message) for seq, message in messages if test(search.Candidate(
        seq, message, message.get_flags(session_flags), message.entry.size,
        message.read_raw))]


class ImapFolder(MailboxDataInterface[ImapMessage]):
    """One folder of one account, as IMAP sees it."""

    def __init__(self, account: str, folder: Folder, storage: ImapStorage,
                 selected_set: SelectedSet, watch: FolderWatch) -> None:
        self.account = account
        self.folder = folder
        self._storage = storage
        self._selected_set = selected_set
        self._watch = watch

    @property
    def mailbox_id(self) -> ObjectId:
        return ObjectId(self.folder.id.encode())

    @property
    def readonly(self) -> bool:
        return False

    @property
    def uid_validity(self) -> int:
        return self.folder.uid_validity

    @property
    def permanent_flags(self) -> frozenset[Flag]:
        # Keywords too (\*): $Junk, $Forwarded and the like are kept as they are.
        return (get_system_flags() - {Recent}) | {Wildcard}

    @property
    def selected_set(self) -> SelectedSet:
        return self._selected_set

    async def update_selected(self, selected: SelectedMailbox, *,
                              wait_on: Event | None = None) -> SelectedMailbox:
        if wait_on is not None and selected.mod_sequence is not None:
            # IDLE: back when the folder changed (or the client said DONE).
            await self._watch.wait(self.account, self.folder.id, selected.mod_sequence,
                                   wait_on)
        mailboxes, blocking = self._storage.mailboxes, self._storage.blocking
        if selected.mod_sequence is None:
            # The folder's MODSEQ first: whatever changes during the listing is newer and
            # comes again with the next update (a read a moment behind only repeats some).
            modseq = await blocking(mailboxes.highest_modseq, self.account, self.folder.id)
            entries = await self._all_entries()
            if len(entries) < self.folder.total:
                # Messages filed before folders had UIDs: they get theirs now, once.
                await blocking(give_uids, mailboxes, self.account, self.folder.id)
                modseq = await blocking(mailboxes.highest_modseq, self.account,
                                        self.folder.id)
                entries = await self._all_entries()
            selected.add_updates([self._message(entry) for entry in entries], [])
            # The by_uid index is eventually consistent: a message filed, flagged or moved
            # just before the listing may be missing from it or shown as it was. The last
            # changes before the listing's MODSEQ are read again from the change log, which
            # is read consistently, so the folder a client selects is the folder as it is,
            # and the HIGHESTMODSEQ it is told covers everything it was shown.
            selected.mod_sequence = max(0, modseq - RECENT_CHANGES)
        changes = await blocking(mailboxes.changes_since, self.account, self.folder.id,
                                 selected.mod_sequence)
        selected.add_updates([self._message(entry) for entry in changes.changed],
                             changes.expunged)
        selected.mod_sequence = changes.highest_modseq
        return selected

    async def _all_entries(self) -> list[UidEntry]:
        entries: list[UidEntry] = []
        while True:
            first = entries[-1].uid + 1 if entries else 1
            page = await self._storage.blocking(self._storage.mailboxes.list_by_uid,
                                                self.account, self.folder.id, first,
                                                LISTING_PAGE)
            entries += page
            if len(page) < LISTING_PAGE:
                return entries

    def _message(self, entry: UidEntry) -> ImapMessage:
        return ImapMessage(entry, self.account, self._storage)

    async def search(self, selected: SelectedMailbox, test: search.Test
                     ) -> list[tuple[int, ImapMessage]]:
        """The selected messages that pass `test`, tested on the thread pool a batch at
        a time: a criterion may read every message's bytes and decode them."""
        messages = [(seq, message) async for seq, message in
                    self.find(SequenceSet.all(), selected)]
        found: list[tuple[int, ImapMessage]] = []
        for start in range(0, len(messages), SEARCH_BATCH):
            found += await self._storage.blocking(_passing, messages[start:start + SEARCH_BATCH],
                                                  selected, test)
        return found

    async def append(self, append_msg: AppendMessage, *,
                     recent: bool = False) -> ImapMessage:
        storage = self._storage
        stored = await storage.blocking(
            append_message, self.account, self.folder.id, bytes(append_msg.literal),
            stored_flags(append_msg.flag_set), append_msg.when or datetime.now(UTC),
            storage.store, storage.references, storage.mailboxes)
        return self._message(stored.uid_entry)

    async def copy(self, uid: int, destination: ImapFolder, *,
                   recent: bool = False) -> int | None:
        message_id = await self._message_id(uid)
        if message_id is None:
            return None
        storage = self._storage
        try:
            copied = await storage.blocking(copy_message, self.account, message_id,
                                            destination.folder.id, storage.store,
                                            storage.references, storage.mailboxes,
                                            (self.folder.id, uid))
        except MessageNotFound:
            return None
        return copied.uid

    async def move(self, uid: int, destination: ImapFolder, *,
                   recent: bool = False) -> int | None:
        message_id = await self._message_id(uid)
        if message_id is None:
            return None
        target = destination.folder.id
        source = self.folder.id

        def into_destination(message: StoredMessage) -> StoredMessage:
            # The index entry may be a moment behind: only this folder's message with this
            # UID moves, checked inside the conditional update.
            if (message.folder, message.uid) != (source, uid):
                raise MessageNotFound(message_id)
            return replace(message, folder=target)

        try:
            moved = await self._storage.blocking(self._storage.mailboxes.update, self.account,
                                                 message_id, into_destination)
        except MessageNotFound:
            return None
        return moved.uid

    async def get(self, uid: int, cached_msg: CachedMessage) -> ImapMessage:
        # The selected state is brought up to date after every command, so what it holds
        # is what the mailbox held then.
        if not isinstance(cached_msg, ImapMessage):
            raise TypeError(cached_msg)
        return cached_msg

    async def update(self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag],
                     mode: FlagOp, *, unchanged_since: int | None = None) -> ImapMessage:
        """`unchanged_since`: CONDSTORE's STORE (UNCHANGEDSINCE n); the message as stored,
        not as this session last saw it, is compared, within the conditional update."""
        if not isinstance(cached_msg, ImapMessage):
            raise TypeError(cached_msg)
        message_id = cached_msg.entry.message_id

        def with_flags(message: StoredMessage) -> StoredMessage:
            if message.uid != uid or message.folder != self.folder.id:
                raise MessageNotFound(message_id)  # moved or copied over meanwhile
            if unchanged_since is not None and message.modseq > unchanged_since:
                raise ModifiedSince(uid)
            flags = stored_flags(mode.apply(imap_flags(message.flags), flag_set))
            return replace(message, flags=flags)

        try:
            changed = await self._storage.blocking(self._storage.mailboxes.update,
                                                   self.account, message_id, with_flags)
        except MessageNotFound:
            return cached_msg.expunged_copy()
        return self._message(changed.uid_entry)

    async def delete(self, uids: Iterable[int]) -> None:
        storage = self._storage
        for uid in uids:
            message_id = await self._message_id(uid)
            if message_id is None:
                continue
            # Only while it is this folder's message with this UID (the index entry may be
            # stale); its bytes go only with their last reference (other copies share them).
            with contextlib.suppress(MessageNotFound):
                await storage.blocking(remove_for_good, self.account, message_id,
                                       storage.mailboxes, storage.store, (self.folder.id, uid))

    async def _message_id(self, uid: int) -> str | None:
        entries = await self._storage.blocking(self._storage.mailboxes.list_by_uid,
                                               self.account, self.folder.id, uid, 1)
        return entries[0].message_id if entries and entries[0].uid == uid else None

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        """\\Recent is not kept (RFC 9051 drops it): no message is ever recent."""

    async def cleanup(self) -> None:
        pass

    async def snapshot(self) -> FolderSnapshot:
        folder = self.folder
        return FolderSnapshot(self.mailbox_id, self.readonly, folder.uid_validity,
                              self.permanent_flags, self.session_flags, folder.total, 0,
                              folder.unread, None, folder.uid_next,
                              highest_modseq=folder.highest_modseq)


class FolderSnapshot(MailboxSnapshot):
    """pymap's snapshot, with the folder's MODSEQ read in the same folder read (STATUS
    HIGHESTMODSEQ)."""

    __slots__ = ["highest_modseq"]

    def __init__(self, *args: Any, highest_modseq: int) -> None:
        super().__init__(*args)
        self.highest_modseq = highest_modseq


class ModifiedSince(Exception):  # named as RFC 7162's MODIFIED response code
    """A conditional STORE's message changed after the MODSEQ the client gave."""

    def __init__(self, uid: int) -> None:
        super().__init__(uid)
        self.uid = uid


class ImapFolders(MailboxSetInterface[ImapFolder]):
    """An account's folders: the six role folders always, then the account's own."""

    def __init__(self, account: str, storage: ImapStorage,
                 selected_sets: dict[tuple[str, str], SelectedSet], watch: FolderWatch) -> None:
        self.account = account
        self._storage = storage
        self._selected_sets = selected_sets
        self._watch = watch

    @property
    def delimiter(self) -> str:
        return FOLDER_SEPARATOR

    @property
    def blocking(self) -> Blocking:
        return self._storage.blocking

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        """Every folder is subscribed: LSUB lists them all, as LIST does."""

    async def list_subscribed(self) -> FolderTree:
        return await self.list_mailboxes()

    async def list_mailboxes(self) -> FolderTree:
        folders = await self._storage.blocking(self._storage.mailboxes.folders, self.account)
        names = {imap_name(folder) for folder in folders}
        names |= {IMAP_INBOX if role_id == INBOX else role_id for role_id in ROLE_FOLDERS}
        tree = FolderTree(self.delimiter)
        tree.update(IMAP_INBOX, *sorted(names - {IMAP_INBOX}))
        return tree

    async def get_mailbox(self, name: str) -> ImapFolder:
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.folder_named,
                                                  self.account, name)
            return await self._opened(folder)
        except FolderNotFound as exc:
            raise KeyError(name) from exc

    async def selected_folder(self, folder_id: str) -> ImapFolder:
        """The folder a session selected, by its id: renamed since, it is still the one;
        deleted (even if another was made under its name), KeyError."""
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.folder_by_id,
                                                  self.account, folder_id)
            return await self._opened(folder)
        except FolderNotFound as exc:
            raise KeyError(folder_id) from exc

    async def _opened(self, folder: Folder) -> ImapFolder:
        if not folder.uid_validity:
            # A role folder before its first message, or a folder made before folders
            # had UIDs: it gets its UIDVALIDITY now, once.
            folder = await self._storage.blocking(self._storage.mailboxes.open_folder,
                                                  self.account, folder.id)
        selected_set = self._selected_sets.setdefault((self.account, folder.id), SelectedSet())
        return ImapFolder(self.account, folder, self._storage, selected_set, self._watch)

    async def add_mailbox(self, name: str) -> ObjectId:
        problem = folder_name_problem(name)
        if problem is not None:
            if role_folder_id(name) is not None:
                raise ValueError(name)  # it exists: [ALREADYEXISTS]
            raise NotAllowedError(problem)
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.create_folder,
                                                  self.account, name)
        except Conflict as exc:
            raise ValueError(name) from exc
        return ObjectId(folder.id.encode())

    async def delete_mailbox(self, name: str) -> None:
        if role_folder_id(name) is not None:
            raise NotAllowedError("a role folder cannot be deleted")
        folder = await self.get_mailbox(name)
        tree = await self.list_mailboxes()
        if any(entry.name.startswith(name + FOLDER_SEPARATOR)
               for entry in tree.list_matching("", "*")):
            raise MailboxHasChildren(name)
        # RFC 3501 6.3.4: its messages go with it.
        entries = await folder._all_entries()
        await folder.delete(entry.uid for entry in entries)
        try:
            await self._storage.blocking(self._storage.mailboxes.delete_folder,
                                         self.account, folder.folder)
        except Conflict as exc:
            raise TemporaryFailure("the folder changed meanwhile; try again") from exc

    async def rename_mailbox(self, before: str, after: str) -> None:
        if role_folder_id(before) is not None:
            raise NotAllowedError("a role folder cannot be renamed")
        problem = folder_name_problem(after)
        if problem is not None:
            if role_folder_id(after) is not None:
                raise ValueError(after)
            raise NotAllowedError(problem)
        folder = await self.get_mailbox(before)
        try:
            await self._storage.blocking(self._storage.mailboxes.rename_folder, self.account,
                                         folder.folder, after)
        except Conflict as exc:
            raise ValueError(after) from exc


class ImapSession(BaseSession[ImapMessage]):
    def __init__(self, account: str, config: IMAPConfig, folders: ImapFolders) -> None:
        super().__init__(account)
        self._config = config
        self._folders = folders

    @property
    def config(self) -> IMAPConfig:
        return self._config

    @property
    def mailbox_set(self) -> ImapFolders:
        return self._folders

    async def list_mailboxes(self, ref_name: str, filter_: str, subscribed: bool = False,
                             selected: SelectedMailbox | None = None
                             ) -> tuple[Iterable[tuple[str, str | None, Sequence[bytes]]],
                                        SelectedMailbox | None]:
        delimiter = self.mailbox_set.delimiter
        if not filter_:  # RFC 3501 6.3.8: the hierarchy delimiter and root name
            return [("", delimiter, [b"Noselect"])], await self._load_updates(selected, None)
        tree = await self.mailbox_set.list_mailboxes()

        def matching() -> list[tuple[str, str | None, Sequence[bytes]]]:
            # SPECIAL-USE (RFC 6154): role folders say what they are for, so a client
            # finds Sent, Drafts and Trash whatever language it speaks.
            return [(entry.name, delimiter, [*entry.attributes, *self._special_use(entry.name)])
                    for entry in tree.list_matching(ref_name, filter_)]

        # Off the event loop: the cost grows with the folders and the pattern.
        listed = await self._folders.blocking(matching)
        return listed, await self._load_updates(selected, None)

    async def search_mailbox(self, selected: SelectedMailbox, keys: frozenset[SearchKey]
                             ) -> tuple[list[tuple[int, ImapMessage]], SelectedMailbox]:
        """pymap's search_mailbox with edge/imap/search.py's criteria (which say why)."""
        folder = await self._get_selected(selected)
        assert isinstance(folder, ImapFolder)
        test = search.all_of(keys, SearchParams(selected))
        found = await folder.search(selected, test)
        return found, await folder.update_selected(selected)

    async def store_unless_changed(
            self, selected: SelectedMailbox, sequence_set: SequenceSet,
            flag_set: frozenset[Flag], mode: FlagOp, unchanged_since: int | None
    ) -> tuple[list[tuple[int, ImapMessage]], list[tuple[int, ImapMessage]],
               SelectedMailbox]:
        """pymap's update_flags with CONDSTORE's condition (RFC 7162 3.1.3): the messages
        changed, those left as they were because they changed after `unchanged_since`,
        and the selected folder brought up to date."""
        if selected.readonly:
            raise MailboxReadOnly()
        folder = await self._get_selected(selected)
        permanent_flags = selected.permanent_flags & flag_set
        changed: list[tuple[int, ImapMessage]] = []
        modified: list[tuple[int, ImapMessage]] = []
        for seq, cached in selected.messages.get_all(sequence_set):
            assert isinstance(cached, ImapMessage)
            try:
                message = await folder.update(cached.uid, cached, permanent_flags, mode,
                                              unchanged_since=unchanged_since)
            except ModifiedSince:
                modified.append((seq, cached))
                continue
            if not message.expunged:
                selected.session_flags.update(cached.uid, flag_set, mode)
            changed.append((seq, message))
        return changed, modified, await folder.update_selected(selected)

    async def _get_selected(self, selected: SelectedMailbox) -> ImapFolder:
        """What the session selected, by the folder's identity, never by its name: another
        session may rename it and make a new folder under the old name meanwhile."""
        try:
            return await self.mailbox_set.selected_folder(selected.mailbox_id.value.decode())
        except KeyError as exc:
            raise SelectedFolderGone(selected.lookup) from exc

    @staticmethod
    def _special_use(name: str) -> list[bytes]:
        role_id = role_folder_id(name)
        role = ROLE_FOLDERS.get(role_id) if role_id else None
        return [SPECIAL_USE[role]] if role in SPECIAL_USE else []


class SelectedFolderGone(MailboxNotFound):
    """The selected folder was deleted (by another session, or the API): the command is
    refused and the session ends with BYE (RFC 3501 7.1.5), since nothing it knows of the
    folder holds any more. Dovecot on Maildir answers NO [SERVERBUG] and keeps a session
    that can do nothing; both leave a folder made under the old name alone
    (tests/functional/test_imap_selected_folder.py)."""

    def get_response(self, tag: bytes) -> ResponseNo:
        response = ResponseNo(tag, b"Selected mailbox no longer exists.",
                              ResponseCode.of(b"NONEXISTENT"))
        response.add_untagged(ResponseBye(b"Selected mailbox was deleted, have to disconnect."))
        return response


class _PasswordGiven(Identity):
    """pysasl keeps a password inside its credentials and only compares it with a stored
    one; here the check is Cognito's, over the network, so the password is taken as
    given and checked by the login service off the event loop."""

    def __init__(self, authcid: str) -> None:
        self._authcid = authcid
        self.secret: str | None = None

    @property
    def authcid(self) -> str:
        return self._authcid

    def compare_authcid(self, authcid: str) -> bool:
        return authcid == self._authcid

    def compare_secret(self, secret: str) -> bool:
        self.secret = secret
        return True

    def get_clear_secret(self) -> str | None:
        return None


class ImapLogin(LoginInterface):
    """Logging in through mailpipe's one login service: the same accounts, passwords and
    lockout as SMTP AUTH and the API."""

    def __init__(self, config: IMAPConfig, storage: ImapStorage,
                 watch: FolderWatch | None = None) -> None:
        self.config = config
        self.storage = storage
        self._tokens = AllTokens(config)
        self._selected_sets: dict[tuple[str, str], SelectedSet] = {}
        self.watch = watch or FolderWatch(storage)

    @property
    def tokens(self) -> TokensInterface:
        return self._tokens

    async def authenticate(self, credentials: ServerCredentials) -> ImapIdentity:
        from pymap.context import socket_info

        peer = socket_info.get().peername_ip
        client = str(peer) if peer is not None else ""
        storage = self.storage
        given = _PasswordGiven(credentials.authcid)
        if not credentials.verify(given) or given.secret is None:
            raise InvalidAuth()  # a mechanism without a password (EXTERNAL, tokens)
        try:
            logged_in = await storage.blocking(log_in, credentials.authcid, given.secret,
                                               client, storage.directory, storage.throttle)
        except Throttled as exc:
            raise InvalidAuth("too many failed logins; try again later") from exc
        except AuthenticationFailed as exc:
            raise InvalidAuth() from exc
        return ImapIdentity(logged_in.account, self)

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> ImapIdentity:
        if authzid and authzid.lower() != authenticated.name.lower():
            raise InvalidAuth("acting for another account is not allowed")
        assert isinstance(authenticated, ImapIdentity)
        return authenticated

    def folders_of(self, account: str) -> ImapFolders:
        return ImapFolders(account, self.storage, self._selected_sets, self.watch)


class ImapIdentity(IdentityInterface):
    def __init__(self, account: str, login: ImapLogin) -> None:
        self._account = account
        self._login = login

    @property
    def name(self) -> str:
        return self._account

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[ImapSession]:
        yield ImapSession(self._account, self._login.config,
                          self._login.folders_of(self._account))

    async def get(self) -> UserMetadata:
        return UserMetadata(self._login.config, self._account)

    async def set(self, metadata: UserMetadata) -> int:
        raise NotAllowedError("accounts are managed with mailpipe user add")

    async def delete(self) -> None:
        raise NotAllowedError("accounts are managed with mailpipe user add")


BACKEND_CAPABILITY = BackendCapability(idle=True, object_id=True, multi_append=True)
