"""FETCH as CONDSTORE and clients expect it: the MODSEQ fetch item (RFC 7162 3.1.4),
BINARY (RFC 3516) answered as clients expect (BINARY.PEEK[n] named BINARY[n], and a
literal8 (~{n}) only for data holding a NUL), header fields named in the order asked, and
each message's answers computed with its load, off the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from pymap.bytes import MaybeBytes
from pymap.fetch import DynamicFetchValue, DynamicLoadedFetchValue, MessageAttributes
from pymap.interfaces.message import LoadedMessageInterface, MessageInterface
from pymap.parsing import Params
from pymap.parsing.primitives import List, LiteralString
from pymap.parsing.specials import AString, FetchAttribute
from pymap.parsing.specials.fetchattr import FetchPartial, FetchRequirement, FetchValue
from pymap.selected import SelectedMailbox

from edge.imap.backend.message import ImapMessage
from edge.imap.backend.view_message import ViewBatches
from edge.imap.condstore import MODSEQ


def modseq_of(message: object) -> int:
    if not isinstance(message, ImapMessage):
        raise TypeError(message)
    return message.entry.modseq


class ModseqAttribute(FetchAttribute):
    """The MODSEQ fetch item: known from the folder listing, no message bytes read."""

    def __init__(self) -> None:
        super().__init__(MODSEQ)

    @property
    def requirement(self) -> FetchRequirement:
        return FetchRequirement.METADATA


class BinaryPeekAttribute(FetchAttribute):
    """BINARY.PEEK[...] is answered as BINARY[...] (RFC 3516 4.2), as BODY.PEEK is as BODY;
    pymap names it BINARY.PEEK, which clients do not match with what they asked."""

    @property
    def raw(self) -> bytes:
        return b"BINARY" + super().raw[len(b"BINARY.PEEK"):]

    @property
    def for_response(self) -> FetchAttribute:
        response = super().for_response
        if response is self:
            return self
        return BinaryPeekAttribute(response.value, response.section, response.partial)


class HeaderFieldsAttribute(FetchAttribute):
    """BODY[HEADER.FIELDS (...)] named in the answer with the field names in the order the
    client gave them, upper-cased, as Dovecot names it; pymap sorts them, and a client that
    matches an answer to its request by the section's text then misses it."""

    def __init__(self, attribute: bytes, section: FetchAttribute.Section | None,
                 partial: FetchPartial | None, names: Sequence[bytes]) -> None:
        super().__init__(attribute, section, partial)
        self.names = tuple(names)

    @property
    def raw(self) -> bytes:
        raw = super().raw
        if self.section is None or not self.section.headers:
            return raw
        return raw.replace(bytes(List(self.section.headers, sort=True)),
                           bytes(List(self.names)), 1)

    @property
    def for_response(self) -> FetchAttribute:
        response = super().for_response
        if response is self:
            return self
        return HeaderFieldsAttribute(response.value, response.section, response.partial,
                                     self.names)


def with_field_order(attribute: FetchAttribute, consumed: bytes,
                      params: Params) -> FetchAttribute:
    """`attribute` naming its header fields as `consumed` (its text) lists them."""
    specifier = consumed.upper().find(b"HEADER.FIELDS")
    opening = consumed.find(b"(", specifier)
    if attribute.section is None or specifier < 0 or opening < 0:
        return attribute
    listed, _ = List.parse(memoryview(consumed)[opening:], params.copy(expected=[AString]))
    names = [bytes(name).upper() for name in listed.value]
    return HeaderFieldsAttribute(attribute.value, attribute.section, attribute.partial, names)


MODSEQ_ITEM = ModseqAttribute()


def modseq_value(message: object) -> FetchValue:
    """A message's MODSEQ as a FETCH data item, for answers pymap builds without one."""
    return FetchValue.of(MODSEQ_ITEM, b"(%d)" % modseq_of(message))


class _ModseqValue(DynamicFetchValue):
    def get_value(self) -> bytes:
        return b"(%d)" % modseq_of(self.message)


class _BinaryValue(DynamicLoadedFetchValue):
    def get_value(self, loaded_msg: LoadedMessageInterface) -> MaybeBytes:
        attribute = self.attribute
        data = self._get_data(attribute.section, attribute.partial, loaded_msg, binary=True)
        # A literal8 where a plain literal would do breaks clients that do not know it
        # (Python's imaplib among them); Dovecot too sends decoded text as a literal.
        return LiteralString(data, b"\x00" in bytes(data))


class CondstoreAttributes(MessageAttributes):
    _simple_attrs: Mapping[bytes, type[DynamicFetchValue]] = {
        **MessageAttributes._simple_attrs, MODSEQ: _ModseqValue}
    _loaded_attrs: Mapping[bytes, type[DynamicLoadedFetchValue]] = {
        **MessageAttributes._loaded_attrs, b"BINARY": _BinaryValue,
        b"BINARY.PEEK": _BinaryValue}

    def __init__(self, message: MessageInterface, selected: SelectedMailbox,
                 attributes: Sequence[FetchAttribute], views: ViewBatches | None = None,
                 position: int = 0) -> None:
        """`views`: the FETCH's views (when they answer its items), of which this message
        is the `position`th."""
        super().__init__(message, selected, attributes)
        self._views = views
        self._position = position

    @asynccontextmanager
    async def load_hook(self) -> AsyncIterator[None]:
        """pymap's, with the items asked for: their answers are computed with the load,
        off the event loop (edge/imap/backend/message.py RawLoadedMessage.prepare), or come
        from the message's view (edge/imap/backend/view_message.py)."""
        message = self.message
        if not isinstance(message, ImapMessage):
            async with super().load_hook():
                yield
            return
        if self._views is not None:
            loaded = await self._views.load(self._position, self.requirement)
        else:
            loaded = await message.load_content(self.requirement, self.attributes)
        with self._get_loaded.apply(loaded):
            yield
