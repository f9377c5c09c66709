"""The index of a message's parts: each part a span of offsets into the one bytes object,
found in one forward pass (the package's text says why and how)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS
from mailcore.imap_view.content_type import content_type
from mailcore.imap_view.fields import read_fields

_BLANK_LINE = re.compile(rb"\n\r?\n")
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
            self._kind = content_type(self.fields.get(b"content-type"), self.default)
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


EMPTY_PART = Part(b"", 0, 0, 0)


def split_message(raw: bytes) -> Part:
    """The message's parts, found in one pass over its bytes (see the package's text)."""
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
                    read_fields(raw, start, header_end))

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


def walk(part: Part) -> Iterator[Part]:
    stack = [part]
    while stack:
        current = stack.pop()
        yield current
        stack += reversed(current.children)
