"""CONDSTORE's commands and modifiers on pymap's parser, which knows none of them: ENABLE
(RFC 5161), FETCH's CHANGEDSINCE, STORE's UNCHANGEDSINCE, the SEARCH MODSEQ criterion and
STATUS HIGHESTMODSEQ (RFC 7162 3.1)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command import Command, CommandAuth
from pymap.parsing.command.auth import StatusCommand
from pymap.parsing.command.select import FetchCommand, SearchCommand, StoreCommand
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import Atom, List, Number
from pymap.parsing.specials import ExtensionOptions, FetchAttribute, SearchKey, SequenceSet
from pymap.parsing.specials.mailbox import Mailbox
from pymap.parsing.specials.statusattr import StatusAttribute

from edge.imap.condstore import HIGHESTMODSEQ, MAX_MODSEQ, MODSEQ
from edge.imap.condstore.fetch import BinaryPeekAttribute, ModseqAttribute, with_field_order

_MODSEQ_ITEM = re.compile(rb" *MODSEQ(?=[ )\r\n])", re.IGNORECASE)
_MODSEQ_CRITERION = re.compile(
    # SEARCH MODSEQ ["/flags/<name>" <all|priv|shared>] <mod-sequence-valzer>
    rb' *MODSEQ (?:"[^"\r\n]*" (?:ALL|PRIV|SHARED) )?(\d{1,19})(?=[ )\r\n])', re.IGNORECASE)


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
            attribute = with_field_order(attribute, bytes(buf[:len(buf) - len(after)]),
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
