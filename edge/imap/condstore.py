"""CONDSTORE (RFC 7162 section 3.1) on pymap's parser, which knows none of it: ENABLE (RFC
5161), the MODSEQ fetch item, FETCH's CHANGEDSINCE and STORE's UNCHANGEDSINCE modifiers,
the SEARCH MODSEQ criterion and STATUS HIGHESTMODSEQ. The values are the folders' own
MODSEQs, the ones every filing, flag change, move and expunge advances.

The FETCH parser here is also where BINARY (RFC 3516) is answered as clients expect:
BINARY.PEEK[n] named BINARY[n], and a literal8 (~{n}) only for data holding a NUL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager

from pymap.bytes import MaybeBytes
from pymap.fetch import DynamicFetchValue, DynamicLoadedFetchValue, MessageAttributes
from pymap.interfaces.message import LoadedMessageInterface
from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command import Command, CommandAuth
from pymap.parsing.command.auth import StatusCommand
from pymap.parsing.command.select import FetchCommand, SearchCommand, StoreCommand
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import Atom, List, LiteralString, Number
from pymap.parsing.specials import (
    AString,
    ExtensionOptions,
    FetchAttribute,
    SearchKey,
    SequenceSet,
)
from pymap.parsing.specials.fetchattr import FetchPartial, FetchRequirement, FetchValue
from pymap.parsing.specials.mailbox import Mailbox
from pymap.parsing.specials.statusattr import StatusAttribute

from edge.imap.backend import ImapMessage

CONDSTORE = b"CONDSTORE"
MODSEQ = b"MODSEQ"
HIGHESTMODSEQ = b"HIGHESTMODSEQ"
# RFC 7162 7: mod-sequence-value is 1 to 2^63 - 1; CHANGEDSINCE and UNCHANGEDSINCE take 0.
MAX_MODSEQ = 2**63 - 1

_MODSEQ_ITEM = re.compile(rb" *MODSEQ(?=[ )\r\n])", re.IGNORECASE)
_MODSEQ_CRITERION = re.compile(
    # SEARCH MODSEQ ["/flags/<name>" <all|priv|shared>] <mod-sequence-valzer>
    rb' *MODSEQ (?:"[^"\r\n]*" (?:ALL|PRIV|SHARED) )?(\d{1,19})(?=[ )\r\n])', re.IGNORECASE)


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


def _with_field_order(attribute: FetchAttribute, consumed: bytes,
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

    @asynccontextmanager
    async def load_hook(self) -> AsyncIterator[None]:
        """pymap's, with the items asked for: their answers are computed with the load,
        off the event loop (edge/imap/backend.py RawLoadedMessage.prepare)."""
        message = self.message
        if not isinstance(message, ImapMessage):
            async with super().load_hook():
                yield
            return
        loaded = await message.load_content(self.requirement, self.attributes)
        with self._get_loaded.apply(loaded):
            yield


def _mod_sequence(option: List | None, buf: memoryview) -> int | None:
    if option is None:
        return None
    values = option.value
    if len(values) != 1 or not isinstance(values[0], Number) \
            or not 0 <= values[0].value <= MAX_MODSEQ:
        raise NotParseable(buf)
    return int(values[0].value)


def _only_options(options: ExtensionOptions, allowed: set[bytes], buf: memoryview) -> None:
    # A modifier this server does not know (QRESYNC's VANISHED, say) is the client's
    # mistake to hear about, not one to ignore silently.
    if set(options.value) - allowed:
        raise NotParseable(buf)


class EnableCommand(CommandAuth):
    """ENABLE <capability>...: the extensions a client wants answers shaped for."""

    command = b"ENABLE"

    def __init__(self, tag: bytes, capabilities: Sequence[bytes]) -> None:
        super().__init__(tag)
        self.capabilities = capabilities

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[EnableCommand, memoryview]:
        capabilities: list[bytes] = []
        while True:
            try:
                _, after = Space.parse(buf, params)
                atom, after = Atom.parse(after, params)
            except NotParseable:
                break
            capabilities.append(atom.value.upper())
            buf = after
        if not capabilities:
            raise NotParseable(buf)
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, capabilities), buf


class CondstoreFetch(FetchCommand):
    """FETCH with the MODSEQ item and the CHANGEDSINCE modifier."""

    changed_since: int | None = None

    @property
    def wants_modseq(self) -> bool:
        return any(attribute.value == MODSEQ for attribute in self.attributes)

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[FetchCommand, memoryview]:
        _, buf = Space.parse(buf, params)
        seq_set, buf = SequenceSet.parse(buf, params)
        _, buf = Space.parse(buf, params)
        attributes, buf = cls._parse_attributes(buf, params)
        if params.uid:
            attributes.append(FetchAttribute(b"UID"))
        options, after = ExtensionOptions.parse(buf, params)
        _only_options(options, {b"CHANGEDSINCE"}, buf)
        changed_since = _mod_sequence(options.get(b"CHANGEDSINCE"), buf)
        _, buf = EndLine.parse(after, params)
        command = cls(params.tag, seq_set, attributes, options)
        command.changed_since = changed_since
        if command.changed_since is not None and not command.wants_modseq:
            attributes.append(ModseqAttribute())  # RFC 7162 3.1.4.1: implied
        return command, buf

    @classmethod
    def _parse_attributes(cls, buf: memoryview, params: Params
                          ) -> tuple[list[FetchAttribute], memoryview]:
        try:
            macro, after = cls._check_macros(buf, params)
            return list(macro), after
        except NotParseable:
            pass
        if bytes(buf[:1]) != b"(":
            return cls._parse_attribute(buf, params)
        buf = buf[1:]
        attributes: list[FetchAttribute] = []
        while True:
            buf = buf[cls._whitespace_length(buf):]
            if bytes(buf[:1]) == b")":
                if not attributes:
                    raise NotParseable(buf)
                return attributes, buf[1:]
            attribute, buf = cls._parse_attribute(buf, params)
            attributes += attribute

    @staticmethod
    def _parse_attribute(buf: memoryview, params: Params
                         ) -> tuple[list[FetchAttribute], memoryview]:
        modseq = _MODSEQ_ITEM.match(buf)
        if modseq is not None:
            return [ModseqAttribute()], buf[modseq.end(0):]
        attribute, after = FetchAttribute.parse(buf, params)
        if attribute.section is not None and attribute.section.headers:
            attribute = _with_field_order(attribute, bytes(buf[:len(buf) - len(after)]),
                                          params)
        buf = after
        if attribute.value == b"BINARY.PEEK":
            attribute = BinaryPeekAttribute(attribute.value, attribute.section,
                                            attribute.partial)
        return [attribute], buf


class UidCondstoreFetch(CondstoreFetch):
    command = b"UID FETCH"
    delegate = FetchCommand
    uid = True

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[FetchCommand, memoryview]:
        return super().parse(buf, params.copy(uid=True))


class CondstoreStore(StoreCommand):
    """STORE with the UNCHANGEDSINCE modifier."""

    unchanged_since: int | None = None

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[StoreCommand, memoryview]:
        command, after = super().parse(buf, params)
        assert isinstance(command, CondstoreStore)
        _only_options(command.options, {b"UNCHANGEDSINCE"}, buf)
        command.unchanged_since = _mod_sequence(command.options.get(b"UNCHANGEDSINCE"), buf)
        return command, after


class UidCondstoreStore(CondstoreStore):
    command = b"UID STORE"
    delegate = StoreCommand
    uid = True

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[StoreCommand, memoryview]:
        return super().parse(buf, params.copy(uid=True))


class CondstoreSearch(SearchCommand):
    """SEARCH with the MODSEQ criterion, among the criteria all of which must hold (not
    inside OR or NOT, which no client sends it in)."""

    modseq_at_least: int | None = None

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[SearchCommand, memoryview]:
        options, buf = cls._parse_options(buf, params)
        charset, buf = cls._parse_charset(buf, params)
        keys: list[SearchKey] = []
        modseq: int | None = None
        while True:
            criterion = _MODSEQ_CRITERION.match(buf)
            if criterion is not None:
                value = int(criterion.group(1))
                if value > MAX_MODSEQ:
                    raise NotParseable(buf)
                modseq = max(modseq or 0, value)
                buf = buf[criterion.end(0):]
                continue
            try:
                _, after = Space.parse(buf, params)
                key, buf = SearchKey.parse(after, params.copy(charset=charset))
                keys.append(key)
            except NotParseable:
                if not keys and modseq is None:
                    raise
                break
        _, buf = EndLine.parse(buf, params)
        command = cls(params.tag, keys or [SearchKey(b"ALL")], charset, options)
        command.modseq_at_least = modseq
        return command, buf


class UidCondstoreSearch(CondstoreSearch):
    command = b"UID SEARCH"
    delegate = SearchCommand
    uid = True

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[SearchCommand, memoryview]:
        return super().parse(buf, params.copy(uid=True))


class _StatusItem(StatusAttribute):
    valid_statuses = {*StatusAttribute.valid_statuses, HIGHESTMODSEQ}  # noqa: RUF012  # pymap's


class CondstoreStatus(StatusCommand):
    """STATUS with HIGHESTMODSEQ: what a client compares with its own to know whether a
    folder changed, without selecting it."""

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[StatusCommand, memoryview]:
        _, buf = Space.parse(buf, params)
        mailbox, buf = Mailbox.parse(buf, params)
        _, buf = Space.parse(buf, params)
        items, buf = List.parse(buf, params.copy(expected=[_StatusItem]))
        if not items.value:
            raise NotParseable(buf)
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, mailbox, items.get_as(_StatusItem)), buf


def condstore_commands() -> Iterable[type[Command]]:
    return (EnableCommand, CondstoreFetch, UidCondstoreFetch, CondstoreStore,
            UidCondstoreStore, CondstoreSearch, UidCondstoreSearch, CondstoreStatus)
