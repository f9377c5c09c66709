"""The IMAP view of a message: what clients fetch and search to show a folder, made once
from the bytes whenever they are written (filed, appended, a draft saved) and kept beside
the message's item, so that a FETCH of it reads no message bytes (as Dovecot answers from
its index cache rather than its mail files).

Every answer is the one the same modules give from the raw bytes (the package's text),
computed once: ENVELOPE, BODY and BODYSTRUCTURE as written; the header section's size (a
ranged read serves BODY[HEADER] and any field outside the kept ones); the kept fields'
lines as they stand, for BODY[HEADER.FIELDS (...)], and as SEARCH reads them (search_text);
and the part map, each part's offsets, for a ranged read of BODY[n] and BINARY[n].

The encoded form is versioned (FORMAT): a view of another format is made again from the
bytes the first time it is read, once, and stored.
"""

from __future__ import annotations

import json
import operator
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mailcore.imap_view.body_structure import body_structure
from mailcore.imap_view.envelope import envelope
from mailcore.imap_view.parts import Part, split_message, walk
from mailcore.imap_view.search_text import read_head

FORMAT = 1
# The header fields kept: those mail clients fetch to list a folder (Thunderbird's list,
# Apple Mail's, Evolution's, K-9's) and SEARCH reads (FROM, TO, CC, BCC, SUBJECT, SENT*).
KEPT_FIELDS = frozenset({
    b"from", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"priority",
    b"x-priority", b"references", b"newsgroups", b"in-reply-to", b"content-type",
    b"reply-to", b"list-id", b"list-unsubscribe", b"list-post", b"sender", b"auto-submitted",
    b"x-mailer", b"mime-version", b"importance", b"x-mailing-list", b"return-path",
    b"disposition-notification-to", b"x-uniform-type-identifier",
    b"x-universally-unique-identifier", b"bimi-indicator", b"bimi-location",
    b"x-bimi-indicator-hash", b"authentication-results", b"content-transfer-encoding"})
_KEPT_LINES = re.compile(
    rb"(?im)^(" + b"|".join(sorted(re.escape(name) for name in KEPT_FIELDS))
    + rb")[ \t]*:[^\n]*+(?:\n[ \t][^\n]*+)*+\n?")
# Part map flags.
MULTIPART, MESSAGE, OPAQUE = 1, 2, 4
# What a view keeps of the header: real mail's kept fields are some dozens of lines in a
# few KiB. A header of 3.5 million "To:" lines made a view that took 1.4 GB to decode (the
# attack review of issue 27): past these bounds the view keeps no header lines, and FETCH
# reads the header section, SEARCH the bytes, as for any field not kept.
MAX_KEPT_LINES = 200
MAX_KEPT_BYTES = 64 * 1024
# A view whose text is larger is not kept (FETCH and SEARCH read that message's bytes, as
# before views), nor is a stored one decoded past it; and the views of one batch read (100,
# held decoded together) are decoded up to BATCH_VIEW_TEXT in all, the rest answered from
# their bytes. An ordinary message's view is about 2 KiB of text; one of a thousand parts
# with long parameters, a few MiB.
MAX_VIEW_TEXT = 4 * 1024 * 1024
BATCH_VIEW_TEXT = 16 * 1024 * 1024


@dataclass(frozen=True)
class PartEntry:
    """One part of the part map, in the order parts are walked (depth first): offsets into
    the message's bytes as parts.Part has them, how many parts it holds directly, what kind
    of container it is, and its Content-Transfer-Encoding (for BINARY)."""

    start: int
    body_start: int
    end: int
    header_break: int
    children: int
    flags: int
    encoding: bytes | None


@dataclass(frozen=True)
class ImapView:
    size: int
    envelope: bytes
    body: bytes  # BODY: the structure without extension data
    body_structure: bytes
    header_size: int  # raw[:header_size] is BODY[HEADER]
    header_blank: bool  # the header ends in a blank line
    # The kept fields' lines as they stand (each with its continuation lines), in the
    # header's order, with the field's name in lower case.
    header_lines: tuple[tuple[bytes, bytes], ...]
    # The kept fields as SEARCH reads them (search_text.read_head): (name, value).
    search_fields: tuple[tuple[bytes, bytes], ...]
    parts: tuple[PartEntry, ...]
    # Whether header_lines and search_fields hold every kept field (within the bounds).
    complete: bool = True

    def keeps(self, names: list[bytes] | tuple[bytes, ...] | frozenset[bytes]) -> bool:
        """Whether every field named (in any letter case) is one the view keeps."""
        return self.complete and all(name.lower() in KEPT_FIELDS for name in names)

    def header_fields(self, names: list[bytes] | tuple[bytes, ...] | frozenset[bytes]
                      ) -> bytes:
        """BODY[HEADER.FIELDS (names)] of kept fields, as sections.header_fields answers."""
        wanted = {name.lower() for name in names}
        chosen = [line for name, line in self.header_lines if name in wanted]
        if chosen and not chosen[-1].endswith(b"\n"):
            chosen.append(b"\r\n")
        if not chosen or self.header_blank:
            chosen.append(b"\r\n")
        return b"".join(chosen)

    def search_values(self, name: bytes) -> list[bytes]:
        """A kept field's values as SEARCH reads them (search_text.MessageText.fields)."""
        return [value for key, value in self.search_fields if key == name]


def make_view(raw: bytes) -> ImapView:
    """The view of a message's bytes, from one index of its parts."""
    root = split_message(raw)
    block = root.header_block
    blank = block.endswith((b"\n\r\n", b"\n\n")) or block in (b"\r\n", b"\n")
    lines = block[:len(block) - (2 if block.endswith(b"\r\n") else 1)] if blank else block
    header_lines = _within_bounds((match.group(1).lower(), match.group())
                                  for match in _KEPT_LINES.finditer(lines))
    search_fields = _within_bounds((name, value) for name, value in read_head(raw)[0]
                                   if name in KEPT_FIELDS)
    complete = header_lines is not None and search_fields is not None
    if header_lines is None or search_fields is None:
        header_lines, search_fields = (), ()
    return ImapView(size=len(raw), envelope=envelope(root),
                    body=body_structure(root, extended=False),
                    body_structure=body_structure(root), header_size=root.body_start,
                    header_blank=blank, header_lines=header_lines,
                    search_fields=search_fields,
                    parts=tuple(_part_map(root)), complete=complete)


def _within_bounds(pairs: Iterable[tuple[bytes, bytes]]
                   ) -> tuple[tuple[bytes, bytes], ...] | None:
    """The pairs, or None past MAX_KEPT_LINES or MAX_KEPT_BYTES (read no further)."""
    kept: list[tuple[bytes, bytes]] = []
    size = 0
    for pair in pairs:
        size += len(pair[1])
        if len(kept) == MAX_KEPT_LINES or size > MAX_KEPT_BYTES:
            return None
        kept.append(pair)
    return tuple(kept)


def _part_map(root: Part) -> list[PartEntry]:
    entries = []
    for part in walk(root):
        flags = ((MULTIPART if part.is_multipart else 0) | (MESSAGE if part.is_message else 0)
                 | (OPAQUE if part.opaque else 0))
        entries.append(PartEntry(part.start, part.body_start, part.end, part.header_break,
                                 len(part.children), flags,
                                 part.header(b"content-transfer-encoding")))
    return entries


def encode(view: ImapView) -> bytes | None:
    """The view as stored: compact JSON (bytes as Latin-1 text, lossless; each list of
    pairs as two lists, which decode turns back into bytes in C), compressed; None for a
    view not to keep (over MAX_VIEW_TEXT)."""
    def texts(values: Iterable[bytes]) -> list[str]:
        return [value.decode("latin-1") for value in values]

    plain = [FORMAT, view.size, view.envelope.decode("latin-1"), view.body.decode("latin-1"),
             view.body_structure.decode("latin-1"), view.header_size, view.header_blank,
             texts(name for name, _ in view.header_lines),
             texts(line for _, line in view.header_lines),
             texts(name for name, _ in view.search_fields),
             texts(value for _, value in view.search_fields),
             [[entry.start, entry.body_start, entry.end, entry.header_break, entry.children,
               entry.flags, None if entry.encoding is None else entry.encoding.decode("latin-1")]
              for entry in view.parts], view.complete]
    text = json.dumps(plain, separators=(",", ":")).encode("utf-8")
    return zlib.compress(text, 6) if len(text) <= MAX_VIEW_TEXT else None


_OCTETS = operator.methodcaller("encode", "latin-1")


def decode(stored: bytes, budget: list[int] | None = None) -> ImapView | None:
    """The view `encode` stored, or None when it is of another format (made again) or
    larger than `budget` (octets of text a batch may still decode; lessened by it). A
    FETCH of 10,000 messages' structure decodes 10,000 views: the pairs are rebuilt by map
    and zip, without a Python step per string."""
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(stored, MAX_VIEW_TEXT)
        if inflater.unconsumed_tail:
            return None  # larger than any view kept
        if budget is not None:
            if len(text) > budget[0]:
                return None  # past its batch's share: answered from its bytes
            budget[0] -= len(text)
        plain = json.loads(text)
        if not isinstance(plain, list) or not plain or plain[0] != FORMAT:
            return None
        return _view(plain)
    except (zlib.error, ValueError, TypeError, AttributeError):
        # Not a view this code wrote (damaged): made again from the bytes, as a missing one.
        return None


def _view(plain: list[Any]) -> ImapView:
    (_, size, envelope_text, body, structure, header_size, blank, header_names, header_lines,
     search_names, search_values, parts, complete) = plain
    return ImapView(
        size=size, envelope=_OCTETS(envelope_text), body=_OCTETS(body),
        body_structure=_OCTETS(structure), header_size=header_size, header_blank=blank,
        header_lines=tuple(zip(map(_OCTETS, header_names), map(_OCTETS, header_lines),
                               strict=True)),
        search_fields=tuple(zip(map(_OCTETS, search_names), map(_OCTETS, search_values),
                                strict=True)),
        parts=tuple(PartEntry(start, body_start, end, header_break, children, flags,
                              None if encoding is None else _OCTETS(encoding))
                    for start, body_start, end, header_break, children, flags, encoding
                    in parts), complete=bool(complete))
