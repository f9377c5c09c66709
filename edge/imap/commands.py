"""IMAP commands pymap does not parse, written against its parsing primitives: NAMESPACE
(RFC 2342), UNSELECT (RFC 3691), AUTHENTICATE with an initial response (SASL-IR, RFC
4959), LIST's selection and return options as far as SPECIAL-USE (RFC 6154, 5258), and
SEARCH strings in UTF-8 when no CHARSET is named; and a parse that answers BAD to any
command it cannot read, never ends the connection."""

from __future__ import annotations

import re
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Iterable

import pymap.parsing.command.auth
import pymap.parsing.specials.mailbox
from aws_lambda_powertools import Logger
from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command import Command, CommandAuth, CommandNoArgs, CommandSelect
from pymap.parsing.command.auth import ListCommand
from pymap.parsing.command.nonauth import AuthenticateCommand
from pymap.parsing.command.select import SearchCommand
from pymap.parsing.commands import Commands, InvalidCommand
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import Atom, String
from pymap.parsing.specials import Mailbox, SearchKey

from edge.imap.condstore.commands import CondstoreSearch, condstore_commands

logger = Logger(child=True)


_SHIFTED = re.compile(rb"&([^-]*)(?:-|$)")


def modified_utf7(data: bytes) -> str:
    """A mailbox name in modified UTF-7 (RFC 3501 5.1.3), in one pass. pymap 0.36's
    modutf7_decode never returns for an "&" without its closing "-" (`a SELECT &x`,
    before login too, held the edge's event loop for good); this one reads such a run
    to the end of the name. Bytes that are no UTF-16 raise UnicodeDecodeError: BAD."""
    decoded: list[str] = []
    position = 0
    for shifted in _SHIFTED.finditer(data):
        decoded.append(data[position:shifted.start()].decode("latin-1"))
        letters = shifted.group(1)
        decoded.append((b"+" + letters.replace(b",", b"/") + b"-").decode("utf-7")
                       if letters else "&")
        position = shifted.end()
    decoded.append(data[position:].decode("latin-1"))
    return "".join(decoded)


# Every mailbox name pymap parses goes through these two names (its Mailbox and LIST's
# pattern): both are pointed at the decoder above.
pymap.parsing.specials.mailbox.modutf7_decode = modified_utf7  # type: ignore[attr-defined]
pymap.parsing.command.auth.modutf7_decode = modified_utf7  # type: ignore[attr-defined]


class NamespaceCommand(CommandNoArgs, CommandAuth):
    command = b"NAMESPACE"


class UnselectCommand(CommandNoArgs, CommandSelect):
    """CLOSE without expunging: the client leaves the folder as it is."""

    command = b"UNSELECT"


class InitialResponseAuthenticate(AuthenticateCommand):
    """AUTHENTICATE PLAIN <base64>: the credentials in the command itself, one round trip
    fewer (SASL-IR). "=" is an empty initial response."""

    def __init__(self, tag: bytes, mech_name: bytes, initial: bytes | None) -> None:
        super().__init__(tag, mech_name)
        self.initial = initial

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[InitialResponseAuthenticate,
                                                             memoryview]:
        _, buf = Space.parse(buf, params)
        mechanism, buf = Atom.parse(buf, params)
        initial: bytes | None = None
        try:
            _, after_space = Space.parse(buf, params)
        except NotParseable:
            pass
        else:
            encoded, buf = Atom.parse(after_space, params)
            try:
                initial = b"" if encoded.value == b"=" else b64decode(encoded.value,
                                                                      validate=True)
            except Base64Error as exc:
                raise NotParseable(after_space) from exc
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, mechanism.value.upper(), initial), buf


_OPTIONS = re.compile(rb" *\(([^()]*)\)")
_PATTERN = re.compile(rb"[\x21\x23-\x27\x2A-\x5B\x5D-\x7A\x7C\x7E]+")


class ExtendedListCommand(ListCommand):
    """LIST [(selection options)] reference pattern [RETURN (return options)]. Special-use
    attributes are always returned; the SPECIAL-USE selection lists just those folders.
    Other options (SUBSCRIBED, CHILDREN) change nothing here: every folder is
    subscribed and children are always said."""

    def __init__(self, tag: bytes, ref_name: str, filter_: str,
                 special_use_only: bool = False) -> None:
        super().__init__(tag, ref_name, filter_)
        self.special_use_only = special_use_only

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[ExtendedListCommand, memoryview]:
        _, buf = Space.parse(buf, params)
        selection: list[bytes] = []
        options = _OPTIONS.match(buf)
        if options is not None:
            selection = bytes(options.group(1)).upper().split()
            buf = buf[options.end(0):]
            _, buf = Space.parse(buf, params)
        reference, buf = Mailbox.parse(buf, params)
        _, buf = Space.parse(buf, params)
        pattern = _PATTERN.match(buf)
        if pattern is not None:
            filter_ = modified_utf7(bytes(pattern.group(0)))
            buf = buf[pattern.end(0):]
        else:
            quoted, buf = String.parse(buf, params)
            filter_ = modified_utf7(quoted.value)
        if bytes(buf[:8]).upper() == b" RETURN ":
            returned = _OPTIONS.match(buf, 7)
            if returned is None:
                raise NotParseable(buf)
            buf = buf[returned.end(0):]
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, reference.value, filter_, b"SPECIAL-USE" in selection), buf


class Utf8Search(CondstoreSearch):
    """SEARCH whose strings are UTF-8 when the client names no CHARSET (RFC 3501 says
    US-ASCII; clients send UTF-8 regardless, and Dovecot reads it so). Bytes that are not
    text in the charset named, or a charset name that is no charset, are answered
    BAD [BADCHARSET]."""

    @classmethod
    def _parse_charset(cls, buf: memoryview, params: Params) -> tuple[str | None, memoryview]:
        try:
            charset, after = super()._parse_charset(buf, params)
        except ValueError as exc:  # UnicodeError: a name or codec that is no charset
            raise NotParseable(buf, b"BADCHARSET") from exc
        return charset or "utf-8", after

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[SearchCommand, memoryview]:
        try:
            command, after = super().parse(buf, params)
        except UnicodeError as exc:
            raise NotParseable(buf, b"BADCHARSET") from exc
        if _has_empty_group(command.keys):
            raise NotParseable(buf)  # "()": RFC 3501's grammar has a key in each group
        if _string_keys(command.keys) > MAX_SEARCH_STRING_KEYS:
            raise NotParseable(buf, b"LIMIT")
        return command, after


# Criteria that read a message's text (its header or its body), each a pass over the
# folder's bytes: 4,000 `NOT BODY x` in one 64 KiB line took 4 s over 21 messages of
# 130 KB (criteria x folder bytes), so a large folder would hold a storage thread for
# minutes per command. A client's search names a handful (Thunderbird's quick filter ORs
# four fields); a hundred is far beyond any client and bounds the cost at 100 passes.
MAX_SEARCH_STRING_KEYS = 100
_STRING_KEYS = frozenset({b"BCC", b"BODY", b"CC", b"FROM", b"HEADER", b"SUBJECT", b"TEXT",
                          b"TO"})


def _string_keys(keys: Iterable[SearchKey]) -> int:
    count, pending = 0, list(keys)
    while pending:
        key = pending.pop()
        if key.value == b"KEYSET":
            pending += key.filter_key_set
        elif key.value == b"OR":
            pending += key.filter_key_or
        elif key.value in _STRING_KEYS:
            count += 1
    return count


def _has_empty_group(keys: Iterable[SearchKey]) -> bool:
    pending = list(keys)
    while pending:
        key = pending.pop()
        if key.value == b"KEYSET":
            if not key.filter_key_set:
                return True
            pending += key.filter_key_set
        elif key.value == b"OR":
            pending += key.filter_key_or
    return False


class UidUtf8Search(Utf8Search):
    command = b"UID SEARCH"
    delegate = SearchCommand
    uid = True

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[SearchCommand, memoryview]:
        return super().parse(buf, params.copy(uid=True))


class BadWhenUnreadable(Commands):
    """pymap's parse turns a NotParseable into BAD; any other error of a parser (a number
    past what a datetime takes, parentheses nested past Python's recursion limit) would
    end the connection with BYE [SERVERBUG]. Each is a command that cannot be read: BAD,
    the session goes on."""

    __slots__ = ()

    def parse(self, buf: memoryview, params: Params) -> tuple[Command, memoryview]:
        try:
            return super().parse(buf, params)
        except (ValueError, ArithmeticError, LookupError, TypeError, RecursionError) as exc:
            logger.info("imap command unreadable", reason=type(exc).__name__)
        # Answered with the command's own tag, as pymap's BAD for an unparseable one is.
        words = _COMMAND_WORDS.match(buf)
        if words is None:
            return InvalidCommand(params, NotParseable(buf)), buf[0:0]
        tagged = params.copy(tag=words.group(1))
        return InvalidCommand(tagged, NotParseable(buf), words.group(2).upper(),
                              Command), buf[0:0]


_COMMAND_WORDS = re.compile(rb"([\x21\x23-\x27\x2C-\x5B\x5D-\x7A\x7C\x7E]+) +"
                            rb"((?:UID +)?[A-Za-z]+)")


def mailpipe_commands() -> Commands:
    commands = BadWhenUnreadable()
    ours: list[type[Command]] = [NamespaceCommand, UnselectCommand,
                                 InitialResponseAuthenticate, ExtendedListCommand,
                                 *condstore_commands(), Utf8Search, UidUtf8Search]
    for command in ours:
        commands.register(command)
    return commands
