"""A message as IMAP lists it (ImapMessage), and what FETCH and SEARCH read of its bytes
(RawLoadedMessage), every answer computed from one index of offsets (mailcore/imap_view/)
off the event loop."""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymap.bytes import Writeable
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.parsing.specials import FetchAttribute, FetchRequirement, ObjectId

from edge.imap.backend.storage import ImapStorage
from edge.imap.flags import imap_flags
from mailcore.domain.mailbox import StoredMessage, UidEntry
from mailcore.errors import MessageNotFound
from mailcore.imap_view import addresses, body_structure, envelope, fields, parts, sections

T = TypeVar("T")


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

    def __init__(self, parsed: envelope.Envelope) -> None:
        super().__init__(lambda: bytes(parsed))
        self.parsed = parsed

    # Decoded only when SEARCH asks: a FETCH writes the bytes and never needs them.
    @functools.cached_property
    def subject(self) -> str | None:
        subject = self.parsed.subject
        return fields.decoded_header(subject) if subject is not None else None

    @functools.cached_property
    def date(self) -> _SearchDate | None:
        return _search_date(self.parsed.date)

    def _listed(self, found: list[addresses.Address]) -> list[str]:
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
    of offsets (mailcore/imap_view/ says why), built in the thread that reads the
    message. prepare() computes the answers a FETCH asked for in that thread too, so the
    event loop only writes bytes; whatever is asked later (SEARCH) is computed when asked,
    from the same index."""

    def __init__(self, message: ImapMessage, requirement: FetchRequirement,
                 raw: bytes) -> None:
        super().__init__(message, requirement, None)
        self._raw = raw
        self._part = parts.split_message(raw)
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
        part = sections.section(self._part, list(section))
        return len(sections.section_body(part)) if part is not None else 0

    def get_envelope_structure(self) -> Any:
        return self._answer(("envelope",), lambda: _EnvelopeAnswer(
            envelope.read_envelope(self._part)))

    def get_body_structure(self) -> Any:
        def answer() -> _StructureAnswer:
            return _StructureAnswer(
                lambda: body_structure.body_structure(self._part, extended=False),
                _Answer(lambda: body_structure.body_structure(self._part)))

        return self._answer(("structure",), answer)

    def get_header(self, name: bytes) -> Sequence[str]:
        value = fields.header_value(self._part, name)
        return [fields.decoded_header(value)] if value is not None else []

    def get_headers(self, section: Sequence[int]) -> Writeable:
        def answer() -> Writeable:
            part = sections.section(self._part, list(section))
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
            return root.header_block + sections.decoded_body(root)
        # A part's body ends before the line break that precedes the next boundary
        # (RFC 2046 5.1.1), where pymap's would keep it.
        part = sections.section(self._part, list(section))
        if part is None:
            return b""
        if binary and not part.is_multipart:
            return sections.decoded_body(part)
        return sections.section_body(part)

    def _message_at(self, section: Sequence[int] | None) -> parts.Part | None:
        """The message whose HEADER or TEXT a section names: the whole message, or the
        one a message/rfc822 part encloses."""
        if not section:
            return self._part
        part = sections.section(self._part, list(section))
        return sections.enclosed(part) if part is not None else None

    def get_message_headers(self, section: Sequence[int] | None = None,
                            subset: Collection[bytes] | None = None,
                            inverse: bool = False) -> Writeable:
        def answer() -> Writeable:
            message = self._message_at(section)
            if message is None:
                return Writeable.empty()
            names = list(subset) if subset is not None else None
            return Writeable.wrap(sections.header_fields(message, names, inverse))

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
        for part in parts.walk(self._part):
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

    @property
    def account(self) -> str:
        return self._account

    @property
    def storage(self) -> ImapStorage:
        return self._storage

    def stored(self) -> StoredMessage:
        """The message's item (a blocking read): where its bytes are."""
        return self._storage.mailboxes.get(self._account, self.entry.message_id)

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
