"""FETCH answered from each message's stored IMAP view (mailcore/imap_view/view.py), as
Dovecot answers from its index cache: what clients ask to show a folder (ENVELOPE,
BODYSTRUCTURE, BODY, RFC822.SIZE, kept header fields) reads no message bytes, the views
read BATCH at a time. The header section (BODY[HEADER], fields not kept) is a ranged read
of its header_size bytes, and a leaf part of a large message one of that part's bytes
(the part map); anything else the whole message (message.py RawLoadedMessage). A message
without a view gets one from its bytes at its first FETCH, kept for the next."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger
from pymap.bytes import Writeable
from pymap.exceptions import TemporaryFailure
from pymap.message import BaseLoadedMessage
from pymap.parsing.specials import FetchAttribute, FetchRequirement

from edge.imap.backend.message import RawLoadedMessage
from edge.imap.condstore import MODSEQ
from mailcore.imap_view import parts, sections
from mailcore.imap_view.view import KEPT_FIELDS, MESSAGE, MULTIPART, ImapView, PartEntry, make_view
from mailcore.ports import KeptView

if TYPE_CHECKING:
    from edge.imap.backend.message import ImapMessage

T = TypeVar("T")
logger = Logger(child=True)

BATCH = 100  # views per read: BatchGetItem's limit
# Above this size, BODY[n] of a leaf part reads that part's bytes only; below it, one read
# of the whole message costs the same one request and answers every section.
LARGE_MESSAGE = 256 * 1024
READ_AHEAD = 8  # header sections read while the one before is written
# Known from the folder's listing: no view, no bytes.
_LISTED = frozenset({b"UID", b"FLAGS", b"INTERNALDATE", b"EMAILID", b"THREADID", MODSEQ,
                     b"RFC822.SIZE"})
_STRUCTURE = frozenset({b"ENVELOPE", b"BODYSTRUCTURE"})
_HEADER_SPECIFIERS = (b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT")
_BODY_NAMES = (b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE")


def _served(attribute: FetchAttribute) -> bool:
    """Whether the view, or a ranged read it locates, answers this FETCH item."""
    name, section = attribute.value, attribute.section
    if name in _LISTED or name in _STRUCTURE or (name == b"BODY" and section is None):
        return True
    if section is None:
        return False
    if not section.parts:  # the message's own header: BODY[HEADER...], RFC822.HEADER
        return (name in (b"BODY", b"BODY.PEEK", b"RFC822.HEADER")
                and section.specifier in _HEADER_SPECIFIERS)
    # BODY[n], BINARY[n], BINARY.SIZE[n], BODY[n.MIME]: a leaf's bytes, or the whole message
    return name in _BODY_NAMES and section.specifier in (None, b"MIME")


def view_serves(attributes: Sequence[FetchAttribute]) -> bool:
    """Whether a FETCH of these items is answered from the views (ViewBatches), rather
    than from each message's whole bytes."""
    return all(_served(attribute) for attribute in attributes)


def _needs_view(attributes: Iterable[FetchAttribute]) -> bool:
    return any(attribute.value not in _LISTED for attribute in attributes)


def _needs_bytes(attributes: Iterable[FetchAttribute]) -> bool:
    """Whether some item may read message bytes (then where they are is read in batches
    with the views): any section but header fields the views keep."""
    return any(attribute.section is not None and not (
        not attribute.section.parts and attribute.section.specifier == b"HEADER.FIELDS"
        and all(name.lower() in KEPT_FIELDS for name in attribute.section.headers or ()))
        for attribute in attributes)


class _Structure(Writeable):
    """BODY (the structure without extension data) and, as `.extended`, BODYSTRUCTURE."""

    def __init__(self, body: bytes, extended: bytes) -> None:
        self._body = body
        self.extended = Writeable.wrap(extended)

    def __bytes__(self) -> bytes:
        return self._body


class _Bytes:
    """A message's bytes as a FETCH reads them: a range at a time, or whole once a range
    will not do; where they are comes with its batch, or is read (a GetItem) when needed."""

    def __init__(self, message: ImapMessage, key: str | None = None) -> None:
        self._message = message
        self._key = key
        self.raw: bytes | None = None

    def key(self) -> str:
        if self._key is None:
            self._key = self._message.stored().raw_key
        return self._key

    def whole(self) -> bytes:
        if self.raw is None:
            self.raw = self._message.storage.store.get_raw(self.key())
        return self.raw

    def range(self, start: int, end: int) -> bytes:
        if self.raw is not None:
            return self.raw[start:end]
        if end <= start:
            return b""
        return self._message.storage.store.get_range(self.key(), start, end)


def _skeleton(entries: Sequence[PartEntry]) -> tuple[parts.Part, dict[int, PartEntry]]:
    """Parts standing for the part map's entries (kind enough for sections.section to
    resolve a section number as it does on the message) and each one's entry, by id."""
    kinds = {MULTIPART: (b"multipart", b"mixed"), MESSAGE: (b"message", b"rfc822")}
    by_part: dict[int, PartEntry] = {}
    root: parts.Part | None = None
    open_parts: list[list[Any]] = []  # [part, how many of its children are still to come]
    for entry in entries:
        kind = kinds.get(entry.flags & (MULTIPART | MESSAGE), (b"text", b"plain"))
        part = parts.Part(b"", entry.start, entry.body_start, entry.end,
                          _kind=(kind[0], kind[1], []))
        by_part[id(part)] = entry
        while open_parts and open_parts[-1][1] == 0:
            open_parts.pop()
        if open_parts:
            open_parts[-1][0].children.append(part)
            open_parts[-1][1] -= 1
        else:
            root = part
        open_parts.append([part, entry.children])
    assert root is not None
    return root, by_part


class ViewLoadedMessage(BaseLoadedMessage):
    """pymap's loaded message answered from the view: prepare() computes, in the thread
    that may read ranges, what the FETCH items will ask, so the event loop only writes."""

    def __init__(self, message: ImapMessage, requirement: FetchRequirement,
                 view: ImapView | None, content: _Bytes) -> None:
        super().__init__(message, requirement, None)
        self._imap_message = message
        self._view = view
        self._bytes = content
        self._raw_loaded: RawLoadedMessage | None = None
        self._answers: dict[tuple[Any, ...], Any] = {}
        self.made: KeptView | None = None  # the view made from the bytes, to keep

    @property
    def view(self) -> ImapView:
        if self._view is None:
            raise RuntimeError("a FETCH item asks for the view it said it did not need")
        return self._view

    def _answer(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key not in self._answers:
            self._answers[key] = compute()
        return self._answers[key]  # type: ignore[no-any-return]

    def _whole(self) -> RawLoadedMessage:
        """The raw path, for a section the view does not locate as a plain leaf."""
        if self._raw_loaded is None:
            self._raw_loaded = RawLoadedMessage(self._imap_message, self.requirement,
                                                self._bytes.whole())
        return self._raw_loaded

    def prepare(self, attributes: Iterable[FetchAttribute]) -> None:
        """Compute now what writing these FETCH items will ask for."""
        for attribute in attributes:
            section = attribute.section
            if section is None or attribute.value == b"RFC822.SIZE":
                continue
            binary = attribute.value.startswith(b"BINARY")
            specifier, numbers = section.specifier, section.parts
            if specifier is None:
                bytes(self.get_body(numbers, binary))
            elif specifier == b"MIME":
                bytes(self.get_headers(numbers))
            elif specifier == b"HEADER":
                bytes(self.get_message_headers(numbers))
            else:
                bytes(self.get_message_headers(numbers, section.headers,
                                               specifier == b"HEADER.FIELDS.NOT"))

    def __bytes__(self) -> bytes:
        return bytes(self._whole())

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section:
            return self._imap_message.entry.size  # the listing's: what filing counted of the bytes
        return self._whole().get_size(section)

    def get_envelope_structure(self) -> Any:
        return Writeable.wrap(self.view.envelope)

    def get_body_structure(self) -> Any:
        return _Structure(self.view.body, self.view.body_structure)

    def get_header(self, name: bytes) -> Sequence[str]:
        return self._whole().get_header(name)

    def get_message_headers(self, section: Sequence[int] | None = None,
                            subset: Collection[bytes] | None = None,
                            inverse: bool = False) -> Writeable:
        if section:
            return self._whole().get_message_headers(section, subset, inverse)
        names = sorted(subset) if subset is not None else None
        view = self.view
        if names is not None and not inverse and view.keeps(names):
            return Writeable.wrap(view.header_fields(names))

        def answer() -> Writeable:
            # The header section alone, indexed as the whole message's would be: its
            # first header_size bytes end where the whole message's header does.
            header = parts.split_message(self._bytes.range(0, view.header_size))
            return Writeable.wrap(sections.header_fields(header, names, inverse))

        return self._answer(("header", tuple(names or ()), names is None, inverse), answer)

    def _leaf(self, section: Sequence[int]) -> PartEntry | None:
        """The part map's entry of the plain leaf part a section names in a large message,
        or None (then the whole message answers)."""
        view = self.view
        if view.size <= LARGE_MESSAGE or not view.parts:
            return None
        root, by_part = _skeleton(view.parts)
        found = sections.section(root, list(section))
        entry = by_part.get(id(found)) if found is not None else None
        return entry if entry is not None and entry.flags == 0 else None

    def get_headers(self, section: Sequence[int]) -> Writeable:
        def answer() -> Writeable:
            entry = self._leaf(section)
            if entry is None:
                return self._whole().get_headers(section)
            return Writeable.wrap(self._bytes.range(entry.start, entry.body_start))

        return self._answer(("mime", tuple(section)), answer)

    def get_body(self, section: Sequence[int] | None = None,
                 binary: bool = False) -> Writeable:
        def answer() -> Writeable:
            entry = self._leaf(section) if section else None
            if entry is None:
                return self._whole().get_body(section, binary)
            body = self._bytes.range(entry.body_start, entry.end)
            if not binary:
                return Writeable.wrap(body)
            fields = {b"content-transfer-encoding": entry.encoding} if entry.encoding else {}
            leaf = parts.Part(body, 0, 0, len(body), fields=fields)
            return Writeable.wrap(sections.decoded_body(leaf))

        return self._answer(("body", tuple(section or ()), binary), answer)

    def get_message_text(self, section: Sequence[int] | None = None) -> Writeable:
        return self._whole().get_message_text(section)

    def contains(self, value: bytes) -> bool:
        return self._whole().contains(value)


def _loaded(message: ImapMessage, requirement: FetchRequirement,
            attributes: Sequence[FetchAttribute], view: ImapView | None,
            needs_view: bool, key: str | None) -> ViewLoadedMessage:
    content = _Bytes(message, key)
    made = None
    if view is None and needs_view:
        # Filed without a view (or with one of another format): made from the bytes, and
        # kept with its batch's (ViewBatches.load).
        view = make_view(content.whole())
        made = KeptView(message.account, message.entry.message_id, content.key(), view)
    loaded = ViewLoadedMessage(message, requirement, view, content)
    loaded.made = made
    loaded.prepare(attributes)
    return loaded


class _Batch:
    """A batch of a FETCH's messages: their views, and where their bytes are when an item
    may read some."""

    def __init__(self, views: dict[str, ImapView], keys: dict[str, str]) -> None:
        self.views = views
        self.keys = keys

    def view(self, message: ImapMessage) -> ImapView | None:
        """The message's view, unless it is of other bytes than those listed (a draft saved
        again, read a moment behind): then none, and it is made again from the bytes."""
        view = self.views.get(message.entry.message_id)
        return view if view is not None and view.size == message.entry.size else None


class ViewBatches:
    """The views of one FETCH's messages, in the order its answers are written: read BATCH
    at a time on the thread pool, the next batch asked for as the first message of a batch
    is loaded, and only the current and the next batch held (a FETCH of 10,000 messages
    holds 200 views, not 10,000)."""

    def __init__(self, messages: Sequence[ImapMessage], attributes: Sequence[FetchAttribute],
                 known: dict[str, ImapView] | None = None) -> None:
        self._messages = messages
        self._known = known
        self._attributes = attributes
        self._needs_view, self._needs_bytes = _needs_view(attributes), _needs_bytes(attributes)
        # Header sections alone (small, each a ranged read): the next read while one is written.
        self._reads_ahead = self._needs_bytes and all(attribute.section is None or (
            not attribute.section.parts and attribute.section.specifier in _HEADER_SPECIFIERS)
            for attribute in attributes)
        self._batches: dict[int, asyncio.Future[_Batch]] = {}
        self._ahead: dict[int, asyncio.Future[ViewLoadedMessage]] = {}
        self._made: list[KeptView] = []

    def _read(self, batch: int) -> None:
        if batch in self._batches or batch * BATCH >= len(self._messages):
            return
        chosen = self._messages[batch * BATCH:(batch + 1) * BATCH]
        storage, account = chosen[0].storage, chosen[0].account
        ids = [message.entry.message_id for message in chosen]

        known = self._known if batch == 0 else None  # read already (condstore/indexed.py)

        def read() -> _Batch:
            views = known if known is not None else (
                storage.views.get_many(account, ids) if self._needs_view else {})
            batch = _Batch(views, {})
            # Where the bytes are: for every message when ranges are read, else for those
            # whose view is made from their bytes now.
            located = ids if self._needs_bytes else [
                message.entry.message_id for message in chosen
                if self._needs_view and batch.view(message) is None]
            batch.keys = storage.mailboxes.raw_keys(account, located)
            return batch

        self._batches[batch] = _unawaited(storage.blocking(read))

    async def _batch(self, position: int) -> _Batch:
        batch = position // BATCH
        self._read(batch)
        if position % BATCH == 0:
            self._read(batch + 1)
            for old in [held for held in self._batches if held < batch]:
                del self._batches[old]
        return await self._batches[batch]

    async def load(self, position: int, requirement: FetchRequirement) -> BaseLoadedMessage:
        """The loaded message of the FETCH's `position`th message."""
        message = self._messages[position]
        if requirement.has_none(FetchRequirement.CONTENT):
            return BaseLoadedMessage(message, requirement, None)
        read = (await self._batch(position) if self._needs_view or self._needs_bytes
                else _Batch({}, {}))
        view = read.view(message)
        if not self._needs_bytes and (view is not None or not self._needs_view):
            # Answered from the view in hand (or the listing): no storage, no parsing,
            # nothing to wait on.
            return ViewLoadedMessage(message, requirement, view, _Bytes(message))
        ahead = self._ahead.pop(position, None)
        if self._reads_ahead:
            self._read_ahead(position, requirement, read)
        loaded = await (ahead or self._load(position, requirement, read))
        if loaded.made is not None:
            self._made.append(loaded.made)
        if self._made and (position % BATCH == BATCH - 1 or position == len(self._messages) - 1):
            # The views made in this batch, kept together: the next FETCH reads no bytes.
            # Two sessions may both make one; the same bytes give the same view.
            made, self._made, views = self._made, [], message.storage.views
            try:  # only where none is kept meanwhile (a draft saved), nor the message gone
                await message.storage.blocking(lambda: views.put(made, if_missing=True))
            except TemporaryFailure:  # answered all the same; made again next time
                logger.warning("imap views not kept", views=len(made))
        return loaded

    def _load(self, position: int, requirement: FetchRequirement,
              read: _Batch) -> asyncio.Future[ViewLoadedMessage]:
        message = self._messages[position]
        return _unawaited(message.storage.blocking(
            _loaded, message, requirement, self._attributes, read.view(message),
            self._needs_view, read.keys.get(message.entry.message_id)))

    def _read_ahead(self, position: int, requirement: FetchRequirement, read: _Batch) -> None:
        """Load the next messages of the batch that have a view (a message without one
        is read whole, so not ahead), READ_AHEAD at most."""
        end = min(position + 1 + READ_AHEAD, (position // BATCH + 1) * BATCH,
                  len(self._messages))
        for ahead in range(position + 1, end):
            if ahead not in self._ahead and read.view(self._messages[ahead]) is not None:
                self._ahead[ahead] = self._load(ahead, requirement, read)


def _unawaited(work: Awaitable[T]) -> asyncio.Future[T]:
    """`work` started now; a FETCH cut short leaves it unawaited, its failure no one's."""
    future = asyncio.ensure_future(work)
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future
