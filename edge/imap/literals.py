"""What one IMAP command may hold: its line, and its literals before and after login (the
bytes are reserved from the process's budget by the connection, edge/imap/connection.py);
and how a literal the session may not take is refused."""

from __future__ import annotations

import re

from pymap.parsing import Params
from pymap.parsing.command import Command

MAX_LINE = 64 * 1024  # a command line without its literals (RFC 7162 asks for >= 8 KiB)
LITERAL_PLUS = re.compile(rb"\{(\d+)\+\}\r?\n$")
# Before login a literal carries at most a user name, a password or a SASL response:
# RFC 4616 bounds PLAIN's three parts to 255 octets each, so RFC 7888's LITERAL- bound of
# 4 KiB is several times what a login needs and all an unauthenticated client may send.
PRE_LOGIN_LITERAL = 4096
# ... and all of a command before login, its lines and literals together, is no larger than
# one command line may be: an unauthenticated connection never holds more than this.
PRE_LOGIN_COMMAND = MAX_LINE
# Literal bytes all logged-in sessions of the process may hold at once: two messages of
# APPENDLIMIT. Twenty 24 MiB APPENDs at once, two let in, grew the server by 106 MiB, their
# stored copies included (bench/imap_literals.py; 545 MiB without a budget, and 1 GB
# before login without the bound above), which leaves most of a 512 MB task to SMTP.
DEFAULT_LITERAL_BUDGET = 64 * 1024 * 1024
# A literal's bytes are read in pieces of at most this, each piece extending its deadline.
LITERAL_PIECE = 64 * 1024


class CommandTooLong(EOFError):
    """Ends the connection: the client sent more than a command may hold."""


class LiteralRefused(Exception):
    """A literal the session may not take now: its code (RFC 5530) and the reason."""

    def __init__(self, code: bytes, text: bytes) -> None:
        super().__init__(text.decode())
        self.code = code
        self.text = text


class RefusedLiteral(Command):
    """A command whose synchronizing literal was refused before "+ go ahead": the client
    sends none of it (RFC 3501 7.5), so the command is answered and the session goes on."""

    command = b"[REFUSED]"

    def __init__(self, tag: bytes, refusal: LiteralRefused) -> None:
        super().__init__(tag)
        self.code = refusal.code
        self.text = refusal.text

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[Command, memoryview]:
        raise NotImplementedError("made by the connection, never parsed")
