"""FETCH of what the folder's listing already holds (UID, FLAGS, MODSEQ, INTERNALDATE), the
request a client makes each time it opens or checks a folder (`UID FETCH 1:* (FLAGS)`),
written as the bytes pymap would write, without pymap's objects per message and item: a
FetchResponse, its attributes, a value and a load hook for each item, each written through
pymap's Writeable protocol checks, were two thirds of the IMAP process's CPU for that
request on 10,000 messages (0.6 of 0.96 s, py-spy). tests/unit/test_imap_listed_fetch.py
compares every byte with pymap's answer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymap.bytes import WriteStream
from pymap.flags import SessionFlags
from pymap.parsing.primitives import List
from pymap.parsing.response import UntaggedResponse
from pymap.parsing.specials import DateTime, FetchAttribute
from pymap.parsing.specials.flag import Flag

from edge.imap.backend.message import ImapMessage
from edge.imap.condstore import MODSEQ

LISTED = frozenset({b"UID", b"FLAGS", MODSEQ, b"INTERNALDATE"})
LINES_PER_RESPONSE = 256  # answers written as one piece (bounded, whatever the folder)


def only_listed(attributes: Sequence[FetchAttribute]) -> bool:
    return all(attribute.value in LISTED and attribute.section is None
               and attribute.partial is None for attribute in attributes)


class ListedFetches(UntaggedResponse):
    """The FETCH answers of some messages, each line written as pymap writes it. Never
    merged with another FETCH of the same message (two answers for one message are
    allowed, RFC 3501 7.4.2), and it already holds MODSEQ when the session asked for it."""

    def __init__(self, lines: bytes) -> None:
        super().__init__()
        self._lines = lines

    def write(self, writer: WriteStream) -> None:
        writer.write(self._lines)


class FlagsWriter:
    """FLAGS as pymap writes them, each set of flags written once (a folder has few)."""

    def __init__(self, session_flags: SessionFlags) -> None:
        self._session_flags = session_flags
        self._written: dict[frozenset[Flag], bytes] = {}

    def __call__(self, message: ImapMessage) -> bytes:
        flags = message.get_flags(self._session_flags)
        written = self._written.get(flags)
        if written is None:
            written = self._written[flags] = bytes(List(flags, sort=True))
        return written


def listed_item(name: bytes, message: ImapMessage, flags: FlagsWriter) -> bytes:
    """One listed FETCH item of a message, as pymap writes it."""
    if name == b"UID":
        return b"UID %d" % message.uid
    if name == b"FLAGS":
        return b"FLAGS " + flags(message)
    if name == MODSEQ:
        return b"MODSEQ (%d)" % message.entry.modseq
    return b"INTERNALDATE " + bytes(DateTime(message.internal_date))


def listed_fetches(numbered: Iterable[tuple[int, ImapMessage]],
                   attributes: Sequence[FetchAttribute],
                   session_flags: SessionFlags) -> list[ListedFetches]:
    names = list(dict.fromkeys(attribute.value for attribute in attributes))
    flags = FlagsWriter(session_flags)
    responses: list[ListedFetches] = []
    lines: list[bytes] = []
    for seq, message in numbered:
        items = b" ".join(listed_item(name, message, flags) for name in names)
        lines.append(b"* %d FETCH (%b)\r\n" % (seq, items))
        if len(lines) == LINES_PER_RESPONSE:
            responses.append(ListedFetches(b"".join(lines)))
            lines = []
    if lines:
        responses.append(ListedFetches(b"".join(lines)))
    return responses
