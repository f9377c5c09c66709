"""ENVELOPE, BODYSTRUCTURE and sections (RFC 3501 6.4.5, 7.4.2) from a message's raw bytes.

pymap builds these from Python's parsed email objects, and what comes out is not what
RFC 3501 asks (checked against Dovecot, tests/functional/test_imap_dovecot.py): the
envelope's date in INTERNALDATE form and its subject decoded, part sizes counting the
part's header, a body that keeps the line break before the next boundary, parameters
decoded from RFC 2231 into 8-bit text, and a disposition written as one string where the
grammar wants "(" type params ")", which a client's parser rejects. pymap's parse is also
superlinear in nesting (38 s for an 8 MiB message of 50 nested multiparts, measured).

Here everything is read from the bytes themselves: strings as they stand in the header
(encoded words stay encoded; decoding is the client's), each part's body ending where
RFC 2046 ends it. The message is indexed once, going forward, as Dovecot's message parser
reads it: a part is a span of offsets into the one bytes object (no part's bytes are
copied to find the parts inside it); the delimiters of all the multiparts still open are
found by bytes.find, each open boundary's search going forward only (_Indexer.
_next_delimiter says how), so the Python steps grow with the parts, not with the lines;
and line counts are summed from the parts inside. Whatever the nesting kind (multipart or
message/rfc822), each byte is read a bounded number of times (at most once per open
multipart, in C), so the cost is linear in the message's size; answers are written into
one list and joined once. Depth and part count are bounded as filing's parser bounds them
(mailcore's mime_limits), and each header field is read within bounds (below).
"""

from __future__ import annotations

import binascii
import email.errors
import email.header
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS

NIL = b"NIL"
# email.header's decoder is regular-expression based and superlinear on hostile input;
# longer values are given to SEARCH as they stand (mailcore's message.py bounds the same).
MAX_DECODED_HEADER = 8 * 1024
# The header fields ENVELOPE and BODYSTRUCTURE read; each part keeps only these (a header
# of a million one-line fields costs its bytes, not a million Python objects).
_STRUCTURE_FIELDS = (
    b"content-type", b"content-transfer-encoding", b"content-id", b"content-description",
    b"content-md5", b"content-disposition", b"content-language", b"content-location",
    b"date", b"subject", b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc",
    b"in-reply-to", b"message-id")
# The first line of a part's header, then every later line: a literal "\n" lets the
# regular expression engine skip ahead with a fast search (measured 15x faster than ^).
_FIELD_AT_START = {name: re.compile(rb"(?i)" + re.escape(name) + rb"[ \t]*:")
                   for name in _STRUCTURE_FIELDS}
_FIELD_AFTER = {name: re.compile(rb"(?i)\n" + re.escape(name) + rb"[ \t]*:")
                for name in _STRUCTURE_FIELDS}
_FIELD_END = re.compile(rb"\n(?![ \t])")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*+)"', re.S)
_ESCAPED = re.compile(rb"\\(.)", re.S)
_PARAMETER = re.compile(rb';[ \t\r\n]*+([^=; \t\r\n]++)[ \t\r\n]*+=[ \t\r\n]*+'
                        rb'(?:"((?:[^"\\]|\\.)*+)"|([^; \t\r\n]*+))', re.S)
# Bounds on what one field costs to read (hostile fields of megabytes are read in part):
# legitimate Content-Type and -Disposition fields hold a few parameters in under 1 KiB
# (a long file name in RFC 2231 sections a few KiB); address fields of 2,000 recipients
# fit in 64 KiB; and one answer reads at most ADDRESS_BUDGET octets of addresses (each
# costs Python steps: 1.3 us an octet for 8 MiB of "a@b ", measured).
MAX_PARAMETERS = 200
MAX_PARAMETER_TEXT = 64 * 1024
MAX_TYPE_TEXT = 1024  # type/subtype, disposition type, Content-Language
MAX_ADDRESS_FIELD = 64 * 1024
ADDRESS_BUDGET = 512 * 1024
CANDIDATES_CHECKED = 64  # lines starting with "--" checked one by one, then bytes.find
HEADER_WINDOW = 4096


@dataclass(eq=False)
class Part:
    """One MIME part as offsets into the message's bytes: its header is raw[start:
    body_start] (blank line included), its body raw[body_start:end]."""

    raw: bytes = field(repr=False)
    start: int
    body_start: int
    end: int
    depth: int = 0
    default: bytes = b"text/plain"
    fields: dict[bytes, bytes] = field(default_factory=dict)  # first of each, unfolded
    # A multipart's parts, or the one message a message/rfc822 part encloses.
    children: list[Part] = field(default_factory=list)
    closed_at: int = -1  # a multipart's: where its close-delimiter line ends
    # The line break before the next delimiter, when it ends the part's header (below).
    header_break: int = 0
    body_lines: int = 0
    lines: int = 0  # of the whole part, header included
    opaque: bool = False  # beyond MAX_NESTING or MAX_PARTS: shown, not followed
    _kind: tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None = None

    @property
    def body(self) -> bytes:
        return self.raw[self.body_start:self.end]

    @property
    def header_block(self) -> bytes:
        return self.raw[self.start:self.body_start]

    def header(self, name: bytes) -> bytes | None:
        return self.fields.get(name)

    @property
    def written_kind(self) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
        """(type, subtype, parameters) as the header writes them (Dovecot keeps the case),
        comments left out, the parameters joined (RFC 2231)."""
        if self._kind is None:
            self._kind = _content_type(self.fields.get(b"content-type"), self.default)
        return self._kind

    @property
    def kind(self) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
        """written_kind, in lower case (parameter values as they are)."""
        major, minor, parameters = self.written_kind
        return major.lower(), minor.lower(), [(name.lower(), value)
                                              for name, value in parameters]

    @property
    def is_multipart(self) -> bool:
        return self.kind[0] == b"multipart"

    @property
    def is_message(self) -> bool:
        return self.kind[:2] == (b"message", b"rfc822")


_EMPTY = Part(b"", 0, 0, 0)


def split_message(raw: bytes) -> Part:
    """The message's parts, found in one pass over its bytes (see the module's text)."""
    return _Indexer(raw).run()


@dataclass(eq=False)
class _Frame:
    """An open multipart: its boundary, and where the next line starting with "--" and
    the boundary is, from where the scan last looked (each frame's search goes forward
    only, so each frame reads the bytes it spans once, by bytes.find)."""

    boundary: bytes
    part: Part
    needle: bytes
    next: int = -1


class _Indexer:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.open: list[Part] = []  # parts whose end is not yet known, outermost first
        self.frames: list[_Frame] = []
        self.by_first_byte: dict[bytes, list[int]] = {}
        self.parts = 0
        self.root: Part | None = None

    def _next_delimiter(self, position: int,
                        end: int | None = None) -> tuple[int, int] | None:
        """(line break, frame) of the first delimiter line after the line break at or
        after `position`. As Dovecot reads boundaries: a line that starts with "--" and an
        open multipart's boundary is its delimiter, the longest boundary wins, and the
        innermost of two equal ones.

        Lines starting with "--" are found by bytes.find and each checked against the
        open boundaries that start with its third byte; after CANDIDATES_CHECKED lines that
        are not delimiters, each open multipart's boundary is looked for by bytes.find
        instead. So a Python step is taken per part and per few lines, never per line
        however many start with "--" (a step for each cost 1.3 us, 5 s for 20 MiB of them,
        measured), and each frame's own search goes forward only, reading the bytes it
        spans once (one regular expression over the open boundaries cost 24 ms to build
        for each level opened). With `end`, only line breaks before it, and nothing kept
        for the next search."""
        raw = self.raw
        limit = len(raw) if end is None else end
        for _ in range(CANDIDATES_CHECKED):
            newline = raw.find(b"\n--", position, limit)
            if newline < 0:
                return None
            found = self._delimiter_at(newline)
            if found is not None:
                return newline, found
            position = newline + 1
        best, best_index = limit, -1
        for index, frame in enumerate(self.frames):
            if end is not None:
                found_at = raw.find(frame.needle, position, end)
                next_at = found_at if found_at >= 0 else end
            else:
                if frame.next < position:
                    found_at = raw.find(frame.needle, position)
                    frame.next = found_at if found_at >= 0 else len(raw)
                next_at = frame.next
            if next_at < best or (next_at == best < limit and len(frame.boundary)
                                  >= len(self.frames[best_index].boundary)):
                best, best_index = next_at, index
        return (best, best_index) if best_index >= 0 else None

    def _delimiter_at(self, newline: int) -> int | None:
        """The frame whose delimiter the line after `newline` ("\n--...") is, or None."""
        best: int | None = None
        for index in self.by_first_byte.get(self.raw[newline + 3:newline + 4], ()):
            boundary = self.frames[index].boundary
            if self.raw.startswith(boundary, newline + 3) and (
                    best is None or len(boundary) >= len(self.frames[best].boundary)):
                best = index
        return best

    def _framed(self) -> None:
        self.by_first_byte = {}
        for index, frame in enumerate(self.frames):
            self.by_first_byte.setdefault(frame.boundary[:1], []).append(index)

    def run(self) -> Part:
        raw = self.raw
        cursor = self._open(0, b"text/plain", 0, None)
        search_from = max(cursor - 1, 0)
        while self.frames:
            found = self._next_delimiter(search_from)
            if found is None:
                break
            newline, index = found
            frame = self.frames[index]
            multipart = frame.part
            # The line break before a delimiter is the delimiter's (RFC 2046 5.1.1), unless
            # it ends a line that is not body: a header line or the blank line after one,
            # or a multipart's close-delimiter line (Dovecot reads whole lines there, and
            # counts them in the part's size).
            end = newline - 1 if newline and raw[newline - 1] == 13 else newline
            deepest, header_break = self.open[-1], 0
            if deepest.body_start > end > deepest.start:
                end, header_break = newline + 1, newline + 1 - end
            elif deepest.closed_at == newline + 1:
                end = newline + 1
            self._close_inside(multipart, end, header_break)
            closing = raw.startswith(b"--", newline + 3 + len(frame.boundary))
            del self.frames[index + (0 if closing else 1):]
            self._framed()
            line_end = raw.find(b"\n", newline + 1)
            if closing:
                multipart.closed_at = line_end + 1 if line_end >= 0 else len(raw)
            if line_end < 0:
                break
            search_from = line_end
            if not closing:
                if self.parts >= MAX_PARTS:
                    break  # the rest is the part before: shown, not followed
                cursor = self._open(line_end + 1, b"message/rfc822" if multipart.kind[1]
                                    == b"digest" else b"text/plain", multipart.depth + 1,
                                    multipart)
                search_from = max(cursor - 1, line_end)
        self._close_inside(None, len(raw))
        assert self.root is not None
        return self.root

    def _open(self, start: int, default: bytes, depth: int, parent: Part | None) -> int:
        """Open the part at `start` (and the message a message/rfc822 part encloses, and so
        on); where the scan for boundaries goes on."""
        while True:
            part = self._part(start, default, depth)
            self.parts += 1
            if parent is None:
                self.root = part
            else:
                parent.children.append(part)
            self.open.append(part)
            if depth > MAX_NESTING:
                part.opaque = True
                return part.body_start
            if part.is_multipart:
                boundary = next((value for name, value in part.kind[2]
                                 if name == b"boundary"), b"")
                if boundary and self.parts < MAX_PARTS:
                    self.frames.append(_Frame(boundary, part, b"\n--" + boundary))
                    self._framed()
                return part.body_start
            if not part.is_message:
                return part.body_start
            if self.parts >= MAX_PARTS:
                part.opaque = True
                return part.body_start
            start, default, depth, parent = part.body_start, b"text/plain", depth + 1, part

    def _part(self, start: int, default: bytes, depth: int) -> Part:
        """The part at `start`: its header runs to the first blank line, or to a boundary
        delimiter of an open multipart (then it has no body); the blank line is looked
        for only up to that delimiter, so no byte is searched twice."""
        raw = self.raw
        if start and self.frames and raw.startswith(b"--", start) and \
                self._next_delimiter(start - 1, start) is not None:
            return Part(raw, start, start, start, depth, default)  # an empty part
        if raw.startswith(b"\n", start) or raw.startswith(b"\r\n", start):
            body_start = start + (1 if raw[start] == 10 else 2)
            return Part(raw, start, body_start, body_start, depth, default)
        # The blank line and a delimiter are looked for in a window that doubles, so
        # neither search reads far past the header (another part's bytes, read again by
        # its own search, would make many headers without a blank line quadratic).
        window = HEADER_WINDOW
        while True:
            end = min(start + window, len(raw))
            blank = _BLANK_LINE.search(raw, start, end)
            stop = blank.start() if blank is not None else end
            delimiter = (self._next_delimiter(start - 1, stop + 1)
                         if self.frames and start else None)
            if delimiter is not None:
                header_end = body_start = delimiter[0] + 1
                break
            if blank is not None:
                header_end, body_start = blank.start(), blank.end()
                break
            if end == len(raw):
                header_end = body_start = end
                break
            window *= 2
        return Part(raw, start, body_start, body_start, depth, default,
                    _fields(raw, start, header_end))

    def _close_inside(self, container: Part | None, end: int, header_break: int = 0) -> None:
        """End every open part inside `container` at `end`."""
        while self.open and self.open[-1] is not container:
            part = self.open.pop()
            part.end = max(end, part.start)
            part.body_start = min(part.body_start, part.end)
            if part.body_start == part.end:
                part.header_break = header_break
            self._count_lines(part)

    def _count_lines(self, part: Part) -> None:
        # Each byte is counted once: in the part that holds it directly, and the parts
        # inside it give their own totals (a recount per level would be quadratic).
        raw, position, total = self.raw, part.body_start, 0
        for child in part.children:
            total += raw.count(b"\n", position, max(child.start, position)) + child.lines
            position = max(position, child.end)
        part.body_lines = total + raw.count(b"\n", position, max(part.end, position))
        part.lines = raw.count(b"\n", part.start, part.body_start) + part.body_lines


def _fields(raw: bytes, start: int, header_end: int) -> dict[bytes, bytes]:
    found = {}
    for name in _STRUCTURE_FIELDS:
        value = _field_value(raw, start, header_end, name)
        if value is not None:
            found[name] = value
    return found


def _field_value(raw: bytes, start: int, end: int, name: bytes) -> bytes | None:
    at_start = _FIELD_AT_START.get(name) or re.compile(rb"(?i)" + re.escape(name) + rb"[ \t]*:")
    match = at_start.match(raw, start, end)
    if match is None:
        after = _FIELD_AFTER.get(name) or re.compile(rb"(?i)\n" + re.escape(name)
                                                       + rb"[ \t]*:")
        match = after.search(raw, start, end)
    if match is None:
        return None
    value_end = _FIELD_END.search(raw, match.end(), end)
    return _unfold(raw[match.end():value_end.start() if value_end else end])


def _unfold(value: bytes) -> bytes:
    # RFC 5322 2.2.3: unfolding removes the line breaks only.
    first, *rest = _LINE_BREAK.split(value)
    return first.strip() + b"".join(line.rstrip() for line in rest)


def header_value(part: Part, name: bytes) -> bytes | None:
    """The unfolded value of the first `name` field of the part's header (or, for a
    message/rfc822 part, of the part's own header), or None. One search of the header's
    bytes: linear in the header, whatever it holds."""
    name = name.lower()
    if name in part.fields or name in _FIELD_AT_START:
        return part.fields.get(name)
    header_end = part.body_start
    return _field_value(part.raw, part.start, header_end, name)


def header_fields(part: Part, names: list[bytes] | None = None,
                  inverse: bool = False) -> bytes:
    """BODY[HEADER], BODY[HEADER.FIELDS (names)] and .NOT: the header lines as they stand,
    in the message's order, each field with its continuation lines, then the blank line."""
    block = part.header_block
    if names is None:
        # BODY[n.HEADER] of a message that ends in its header, as Dovecot answers it:
        # without the line break that the next delimiter follows.
        return block[:len(block) - part.header_break]
    blank = block.endswith((b"\n\r\n", b"\n\n")) or block in (b"\r\n", b"\n")
    lines = block[:len(block) - (2 if block.endswith(b"\r\n") else 1)] if blank else block
    # The fields named, found by one search in C (a Python step per field would make a
    # header of a million one-line fields cost a million steps).
    named = re.compile(rb"(?im)^(?:" + b"|".join(sorted({re.escape(name) for name in names}))
                       + rb")[ \t]*:[^\n]*+(?:\n[ \t][^\n]*+)*+\n?")
    if inverse:
        kept = named.sub(b"", lines)
        chosen = [kept] if kept else []
    else:
        chosen = [match.group() for match in named.finditer(lines)]
    if chosen and not chosen[-1].endswith(b"\n"):
        chosen.append(b"\r\n")
    if not chosen or blank:
        # The blank line: Dovecot writes it when the header has one, or nothing else.
        chosen.append(b"\r\n")
    return b"".join(chosen)


def _string(value: bytes | None) -> bytes:
    """An nstring: quoted when it can be, a literal when it holds 8-bit or line breaks."""
    if value is None:
        return NIL
    if any(byte > 0x7E or byte < 0x20 for byte in value):
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _human(value: bytes | None) -> bytes:
    """An ENVELOPE subject or name as Dovecot writes text for people: tabs and line breaks
    as spaces, and a literal rather than a quoted string with escapes."""
    if value is None:
        return NIL
    if any(byte > 0x7E or byte < 0x20 or byte in b'"\\' for byte in value):
        value = value.translate(_SPACING)
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value + b'"'


_SPACING = bytes.maketrans(b"\t\r\n", b"   ")


def _list(items: list[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")" if items else NIL


def _content_type(value: bytes | None,
                  default: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    value = value or default
    semicolon = value.find(b";")
    kind = value if semicolon < 0 else value[:semicolon]
    major, _, minor = _without_comments(kind[:MAX_TYPE_TEXT]).partition(b"/")
    major, minor = major.strip(), minor.strip()
    if not major or not minor:
        major, _, minor = default.partition(b"/")
        semicolon = -1
    return major, minor, _joined(_parameters(value[semicolon:]) if semicolon >= 0 else [])


def _without_comments(text: bytes) -> bytes:
    """`text` with its (comments) left out, nested ones too, counted, never recursed."""
    if b"(" not in text:
        return text
    kept, depth, position = [], 0, 0
    for stop in _COMMENT_STOP.finditer(text):
        if depth == 0:
            kept.append(text[position:stop.start()])
        character = text[stop.start()]
        if character == 0x28:
            depth += 1
        elif character == 0x29 and depth:
            depth -= 1
        elif character == 0x29:
            kept.append(b")")
        position = stop.end()
    if depth == 0:
        kept.append(text[position:])
    return b"".join(kept)


def _languages(part: Part) -> bytes:
    """Content-Language as Dovecot writes it: a list of the tags, comments left out."""
    value = part.header(b"content-language")
    if value is None:
        return NIL
    tags = [tag for tag in re.split(rb"[\s,]+", _without_comments(value[:MAX_TYPE_TEXT]))
            if tag]
    return b"(" + b" ".join(_string(tag) for tag in tags) + b")" if tags else NIL


def _parameters(text: bytes) -> list[tuple[bytes, bytes]]:
    """The `;` name=value pairs of `text` (from a Content-Type's or -Disposition's first
    ";"), in order. Each Python step is a parameter found: the search skips whatever is
    not one without coming back (no optional white space on both sides of a ";" to try
    again at each space, which is quadratic in a long run of them), and a field gives at
    most MAX_PARAMETERS from its first MAX_PARAMETER_TEXT octets."""
    found: list[tuple[bytes, bytes]] = []
    position, text = 0, text[:MAX_PARAMETER_TEXT]
    while len(found) < MAX_PARAMETERS:
        match = _PARAMETER.search(text, position)
        if match is None:
            break
        name, quoted, plain = match.groups()
        found.append((name, _ESCAPED.sub(rb"\1", quoted) if quoted is not None else plain))
        position = match.end()
    return found


_ATTRIBUTE_SPECIALS = frozenset(b"*'%()<>@,;:\\\"/[]?= ")


def _joined(parameters: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 2231 continuations (name*0, name*1*, ...) joined into one name or name*, as
    Dovecot joins them: plain parameters first, in order, then the joined ones by name; a
    run with a missing section stays as it came."""
    plain: list[tuple[bytes, bytes]] = []
    sections: dict[bytes, list[tuple[int, bool, bytes]]] = {}
    names: dict[bytes, bytes] = {}  # each name as first written (Dovecot keeps the case)
    for name, value in parameters:
        key, star, suffix = name.partition(b"*")
        # name* is section 0, extended; name*n and name*n* are section n.
        extended = not suffix or suffix.endswith(b"*")
        number = suffix[:-1] if suffix.endswith(b"*") else suffix
        if not star or not key or (number and not number.isdigit()) or len(number) > 9:
            plain.append((name, value))
            continue
        names.setdefault(key.lower(), key)
        sections.setdefault(key.lower(), []).append((int(number or b"0"), extended, value))
    for lower in sorted(sections):
        key = names[lower]
        run = sorted(sections[lower], key=lambda item: item[0])
        if [number for number, _, _ in run] != list(range(len(run))):
            plain += [(key + b"*%d" % number + (b"*" if extended else b""), value)
                      for number, extended, value in run]
            continue
        any_extended = any(extended for _, extended, _ in run)
        pieces = [b"''"] if any_extended and not run[0][1] else []
        for _, extended, value in run:
            pieces.append(value if extended or not any_extended else _percent(value))
        plain.append((key + (b"*" if any_extended else b""), b"".join(pieces)))
    return plain


def _percent(value: bytes) -> bytes:
    return b"".join(b"%%%02X" % byte if byte in _ATTRIBUTE_SPECIALS or byte < 0x20
                    or byte > 0x7E else bytes((byte,)) for byte in value)


def _parameter_list(parameters: list[tuple[bytes, bytes]]) -> bytes:
    return _list([_string(name) + b" " + _string(value) for name, value in parameters])


def _disposition(part: Part) -> bytes:
    value = part.header(b"content-disposition")
    if value is None:
        return NIL
    semicolon = value.find(b";")
    kind = value if semicolon < 0 else value[:semicolon]
    parameters = _parameters(value[semicolon:]) if semicolon >= 0 else []
    return b"(" + _string(_without_comments(kind[:MAX_TYPE_TEXT]).strip()) + b" " + \
        _parameter_list(_joined(parameters)) + b")"


# Addresses (RFC 5322 3.4) for ENVELOPE. A scan in one pass: tokens are found by one
# regular expression with no ambiguity (nothing to backtrack into), comments by counting
# parentheses (no recursion, so 3,000 "(" cost 3,000 steps), and groups give RFC 3501's
# markers: (NIL NIL "name" NIL) before their members, (NIL NIL NIL NIL) after.
_TOKEN = re.compile(rb"""
    (?P<space>[ \t\r\n]+)
  | (?P<atom>[^ \t\r\n()<>@,;:\\".\[\]]+)
  | (?P<quoted>"(?:[^"\\]|\\.)*+"?)
  | (?P<literal>\[(?:[^\[\]\\]|\\.)*+\]?)
  | (?P<comment>\()
  | (?P<special>.)
""", re.X | re.S)
_COMMENT_STOP = re.compile(rb"[()\\]")


@dataclass(frozen=True)
class Address:
    """One ENVELOPE address: a mailbox, or a group's start (only `mailbox`, the group's
    name) or end (all None)."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def __bytes__(self) -> bytes:
        return b"(" + b" ".join([_human(self.name), *(_string(value) for value in (
            self.route, self.mailbox, self.host))]) + b")"

    def __str__(self) -> str:
        address = b"@".join(value for value in (self.mailbox, self.host) if value)
        text = (b"%s <%s>" % (self.name, address)) if self.name else address
        return _decoded(text)


def _tokens(value: bytes) -> Iterator[tuple[str, bytes, bool]]:
    """(kind, text, whether space or a comment came before) for each token."""
    position, length, spaced = 0, len(value), False
    while position < length:
        match = _TOKEN.match(value, position)
        assert match is not None and match.lastgroup is not None  # (?P<special>.) takes any
        kind = match.lastgroup
        if kind == "space":
            spaced, position = True, match.end()
            continue
        if kind == "comment":
            depth, cursor = 1, position + 1
            while depth and cursor < length:
                stop = _COMMENT_STOP.search(value, cursor)
                if stop is None:
                    cursor = length
                    break
                character = value[stop.start()]
                cursor = stop.end() + (1 if character == 0x5C else 0)
                depth += 0 if character == 0x5C else 1 if character == 0x28 else -1
            yield kind, value[position + 1:cursor - 1 if not depth else cursor], spaced
            spaced, position = True, cursor
            continue
        text = match.group()
        if kind == "quoted":
            text = _ESCAPED.sub(rb"\1", text[1:-1] if len(text) > 1 and text.endswith(b'"')
                                else text[1:])
        yield kind, text, spaced
        spaced, position = False, match.end()


def addresses(value: bytes) -> list[Address]:
    """An address list as ENVELOPE lists it, whatever the field holds."""
    listed: list[Address] = []
    words: list[tuple[str, bytes, bool]] = []
    inside: list[tuple[str, bytes, bool]] = []
    comment: bytes | None = None
    in_angle = angled = in_group = False

    def finish() -> None:
        nonlocal words, inside, comment, angled
        found = (_mailbox(inside, _phrase(words) or comment) if angled
                 else _mailbox(words, comment) if words else None)
        # Never all NIL: that is a group's end marker.
        if found is not None and (found.mailbox or found.host or found.name):
            listed.append(found)
        words, inside, comment, angled = [], [], None, False

    for token in _tokens(value):
        kind, text, _ = token
        if in_angle:
            if kind == "special" and text == b">":
                in_angle = False
            elif kind != "comment":
                inside.append(token)
            continue
        if kind == "comment":
            # A comment after an address names it (Dovecot); one before it does not.
            if words:
                comment = text.strip() or comment
        elif kind == "special" and text == b",":
            finish()
        elif kind == "special" and text == b";":
            finish()
            if in_group:
                listed.append(Address(None, None, None, None))
                in_group = False
        elif kind == "special" and text == b":" and not in_group and not angled:
            listed.append(Address(None, None, _phrase(words) or b"", None))
            words, comment, in_group = [], None, True
        elif kind == "special" and text == b"<" and not angled:
            in_angle = angled = True
        else:
            words.append(token)
    finish()
    if in_group:
        listed.append(Address(None, None, None, None))
    return listed


def _phrase(words: list[tuple[str, bytes, bool]]) -> bytes | None:
    pieces: list[bytes] = []
    for _kind, text, spaced in words:
        if pieces and spaced:
            pieces.append(b" ")
        pieces.append(text)
    return b"".join(pieces) or None


def _mailbox(tokens: list[tuple[str, bytes, bool]], name: bytes | None) -> Address:
    route = None
    if tokens and tokens[0][1] == b"@" and tokens[0][0] == "special":
        colon = next((index for index, (kind, text, _) in enumerate(tokens)
                      if kind == "special" and text == b":"), None)
        if colon is not None:
            route = b"".join(text for _, text, _ in tokens[:colon])
            tokens = tokens[colon + 1:]
    at = max((index for index, (kind, text, _) in enumerate(tokens)
              if kind == "special" and text == b"@"), default=None)
    local = tokens if at is None else tokens[:at]
    domain = [] if at is None else tokens[at + 1:]
    mailbox = b"".join(_addr_text(token) for token in local)
    host = b"".join(text for _, text, _ in domain)
    return Address(name, route, mailbox or None, host or None)


def _addr_text(token: tuple[str, bytes, bool]) -> bytes:
    return token[1]  # a quoted local part without its quotes, as Dovecot gives it


@dataclass(frozen=True)
class Envelope:
    """RFC 3501's ENVELOPE of a message, parsed: strings as they stand in the header."""

    date: bytes | None
    subject: bytes | None
    from_: list[Address]
    sender: list[Address]
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    in_reply_to: bytes | None
    message_id: bytes | None

    def __bytes__(self) -> bytes:
        def listed(found: list[Address]) -> bytes:
            return b"(" + b"".join(bytes(address) for address in found) + b")" if found else NIL

        return b"(" + b" ".join([
            _string(self.date), _human(self.subject), listed(self.from_),
            listed(self.sender), listed(self.reply_to), listed(self.to), listed(self.cc),
            listed(self.bcc), _string(self.in_reply_to), _string(self.message_id)]) + b")"


def read_envelope(part: Part, budget: list[int] | None = None) -> Envelope:
    """`budget`: octets of address fields left to read for this answer (ADDRESS_BUDGET);
    an address field is read from its first MAX_ADDRESS_FIELD octets."""
    budget = budget if budget is not None else [ADDRESS_BUDGET]

    def listed(name: bytes) -> list[Address]:
        value = part.header(name)
        if value is None:
            return []
        allowed = min(len(value), MAX_ADDRESS_FIELD, budget[0])
        budget[0] -= allowed
        return addresses(value[:allowed]) if allowed else []

    from_ = listed(b"from")
    sender = listed(b"sender") if part.header(b"sender") is not None else from_
    reply_to = listed(b"reply-to") if part.header(b"reply-to") is not None else from_
    return Envelope(part.header(b"date"), part.header(b"subject"), from_, sender, reply_to,
                    listed(b"to"), listed(b"cc"), listed(b"bcc"), part.header(b"in-reply-to"),
                    part.header(b"message-id"))


def envelope(part: Part, budget: list[int] | None = None) -> bytes:
    return bytes(read_envelope(part, budget))


def _decoded(value: bytes) -> str:
    """Encoded words (RFC 2047) decoded, for SEARCH; a long value as it stands."""
    if len(value) <= MAX_DECODED_HEADER and b"=?" in value:
        try:
            return str(email.header.make_header(email.header.decode_header(
                value.decode("latin-1"))))
        except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
            pass
    return value.decode("utf-8", "replace")


def decoded_header(value: bytes) -> str:
    return _decoded(value)


def _opaque(part: Part, extended: bool, out: list[bytes]) -> None:
    out += [b'("application" "octet-stream" NIL NIL NIL ', _string(
        part.header(b"content-transfer-encoding") or b"7bit"),
        b" %d" % (part.end - part.body_start), b" NIL NIL NIL NIL)" if extended else b")"]


def body_structure(part: Part, extended: bool = True) -> bytes:
    out: list[bytes] = []
    budget = [ADDRESS_BUDGET]  # shared by the envelopes of every enclosed message
    # An explicit stack: nesting never reaches Python's recursion limit, and every part's
    # answer goes into the one list, joined once.
    work: list[Part | bytes] = [part]
    while work:
        current = work.pop()
        if isinstance(current, bytes):
            out.append(current)
            continue
        if current.opaque or current.depth > MAX_NESTING:
            _opaque(current, extended, out)
            continue
        major, minor, parameters = current.written_kind
        if current.is_multipart:
            tail = [b" ", _string(minor)]
            if extended:
                tail += [b" ", _parameter_list(parameters), b" ", _disposition(current),
                         b" ", _languages(current), b" ",
                         _string(current.header(b"content-location"))]
            work.append(b"".join(tail) + b")")
            work += reversed(current.children or [_EMPTY])
            out.append(b"(")
            continue
        if major.lower() == b"text" and all(name.lower() != b"charset"
                                            for name, _ in parameters):
            parameters = [*parameters, (b"charset", b"us-ascii")]  # RFC 2045 5.2
        out += [b"(", _string(major), b" ", _string(minor), b" ",
                _parameter_list(parameters), b" ", _string(current.header(b"content-id")),
                b" ", _string(current.header(b"content-description")), b" ",
                _string(current.header(b"content-transfer-encoding") or b"7bit"),
                b" %d" % (current.end - current.body_start)]
        tail = []
        if extended:
            tail = [b" ", _string(current.header(b"content-md5")), b" ",
                    _disposition(current), b" ", _languages(current),
                    b" ", _string(current.header(b"content-location"))]
        if current.is_message:
            enclosed = current.children[0] if current.children else _EMPTY
            out += [b" ", envelope(enclosed, budget), b" "]
            work.append(b" %d" % current.body_lines + b"".join(tail) + b")")
            work.append(enclosed)
            continue
        if current.kind[0] == b"text":
            out.append(b" %d" % current.body_lines)
        out += tail
        out.append(b")")
    return b"".join(out)


def section(message: Part, numbers: list[int]) -> Part | None:
    """The part a section number names (RFC 3501 6.4.5): part n of a multipart, part 1 of
    anything else (the part itself, as Dovecot reads it at any depth, except that the body
    of a message that is not multipart has no parts of its own), and the enclosed message's
    parts below a message/rfc822 part. None when there is no such part."""
    current = message
    bare_body = False  # part 1 of a part that is not multipart: nothing below it
    for depth, number in enumerate(numbers):
        if bare_body:
            return None
        if depth and current.is_message:
            if not current.children:
                return None
            current = current.children[0]
        if current.is_multipart:
            if not 1 <= number <= len(current.children):
                return None
            current = current.children[number - 1]
        elif number != 1:
            return None
        else:
            # Part 1 of a message/rfc822 part is the message it holds, whose parts the
            # next number names; of anything else, the part itself, and nothing below.
            bare_body = not current.is_message
    return current


def section_body(part: Part) -> bytes:
    """BODY[section]: the part's body."""
    return part.raw[part.body_start:part.end]


def enclosed(part: Part) -> Part | None:
    """The message a message/rfc822 part holds (for n.HEADER and n.TEXT), or None."""
    return part.children[0] if part.is_message and part.children else None


def walk(part: Part) -> Iterator[Part]:
    stack = [part]
    while stack:
        current = stack.pop()
        yield current
        stack += reversed(current.children)


def decoded_body(part: Part) -> bytes:
    """The body without its transfer encoding (BINARY, RFC 3516)."""
    encoding = (part.header(b"content-transfer-encoding") or b"7bit").strip().lower()
    if encoding == b"base64":
        # Lenient, as readers are: characters outside the alphabet skipped, padding added.
        letters = re.sub(rb"[^A-Za-z0-9+/]", b"", part.body)
        try:
            return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))
        except binascii.Error:  # a lone trailing character: what decodes before it
            return binascii.a2b_base64(letters[:len(letters) // 4 * 4])
    if encoding == b"quoted-printable":
        return quopri.decodestring(part.body)
    return part.body
