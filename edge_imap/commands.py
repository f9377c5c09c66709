"""IMAP commands pymap does not parse, written against its parsing primitives: NAMESPACE
(RFC 2342), UNSELECT (RFC 3691), AUTHENTICATE with an initial response (SASL-IR, RFC
4959), and LIST's selection and return options as far as SPECIAL-USE (RFC 6154, 5258)."""

from __future__ import annotations

import re
from base64 import b64decode
from binascii import Error as Base64Error

from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command import Command, CommandAuth, CommandNoArgs, CommandSelect
from pymap.parsing.command.auth import ListCommand
from pymap.parsing.command.nonauth import AuthenticateCommand
from pymap.parsing.commands import Commands
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.modutf7 import modutf7_decode
from pymap.parsing.primitives import Atom, String
from pymap.parsing.specials import Mailbox

from edge_imap.condstore import condstore_commands


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
            filter_ = modutf7_decode(bytes(pattern.group(0)))
            buf = buf[pattern.end(0):]
        else:
            quoted, buf = String.parse(buf, params)
            filter_ = modutf7_decode(quoted.value)
        if bytes(buf[:8]).upper() == b" RETURN ":
            returned = _OPTIONS.match(buf, 7)
            if returned is None:
                raise NotParseable(buf)
            buf = buf[returned.end(0):]
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, reference.value, filter_, b"SPECIAL-USE" in selection), buf


def mailpipe_commands() -> Commands:
    commands = Commands()
    ours: list[type[Command]] = [NamespaceCommand, UnselectCommand,
                                 InitialResponseAuthenticate, ExtendedListCommand,
                                 *condstore_commands()]
    for command in ours:
        commands.register(command)
    return commands
