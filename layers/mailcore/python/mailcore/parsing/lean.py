"""The lean parse: a large message parsed without its large leaf bodies, each read from the
raw bytes, a chunk at a time, only when its size or content is asked for. The email package
holds a message several times over while it parses (161 MiB traced for a 24.4 MiB message
with three binary attachments) and keeps a str per line (20 MiB of empty or one-character
lines took 743-940 MiB): every leaf body of a large message is left out, text too, whatever
its encoding (issues 14 and 25). A message the lean parse cannot stand in for is parsed
whole, and read the same way."""

from __future__ import annotations

import binascii
import codecs
import email
import email.parser
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from typing import TypeVar

from mailcore.domain.message import PARSE_ERRORS, in_pieces, part_bytes
from mailcore.parsing.limits import ParseLimits

_UUENCODED = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_HEADER_LINE = re.compile(rb"[\041-\071\073-\176]+:|[ \t]")
_T = TypeVar("_T")


def parse_whole(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def lean_or_whole(raw: bytes, read: Callable[[ParsedRaw], _T], limits: ParseLimits) -> _T:
    """`read` of the lean parse, or of the whole parse when the lean one cannot stand in."""
    try:
        return read(lean_parse(raw, limits))
    except _NotLean:
        return read(ParsedRaw(parse_whole(raw), raw, {}, limits.decode_chunk))


class _NotLean(Exception):
    """The lean parse cannot stand in for the whole one here; parse the whole message."""


@dataclass(frozen=True)
class ParsedRaw:
    """A parsed message, and where the bodies left out of the parse are in the raw bytes:
    each such part's payload is a token that names its body's (start, end)."""

    message: EmailMessage
    raw: bytes
    left_out: dict[str, tuple[int, int]]
    decode_chunk: int  # characters of a left-out body decoded at a time

    def part_bytes(self, part: Message) -> bytes | bytearray:
        """What domain.message.part_bytes gives, for a part whose body may be left out."""
        span = self._span(part)
        if span is None:
            return self._kept_part_bytes(part)
        # Grown in place: joining would hold every chunk and the result at once.
        data = bytearray()
        for chunk in self._decoded_chunks(part, span):
            data += chunk
        return data

    def part_size(self, part: Message) -> int:
        span = self._span(part)
        if span is None:
            if self.left_out and part.is_multipart():
                return self._attached_message_size(part)
            return len(self._kept_part_bytes(part))
        return sum(len(chunk) for chunk in self._decoded_chunks(part, span))

    def text_chunks(self, part: Message) -> Iterator[str] | None:
        """A left-out text body as get_content() gives it, a chunk at a time; None for a
        part whose body was parsed."""
        span = self._span(part)
        if span is None:
            return None
        # As email.contentmanager.get_text_content decodes it, and failing as early: an
        # unknown charset fails here, unless the body decodes to nothing (bytes.decode
        # then looks no charset up).
        decoded = self._decoded_chunks(part, span)
        first = next((chunk for chunk in decoded if chunk), b"")
        if not first:
            return iter(())
        charset = part.get_param("charset", "ASCII")
        codec = codecs.lookup(charset)  # type: ignore[arg-type]
        decoder = codec.incrementaldecoder("replace") if codec.incrementaldecoder else None

        def chunks() -> Iterator[str]:
            if decoder is None or codec.name.startswith(("utf-16", "utf-32")):
                # Decoded whole: these decoders, piece by piece, refuse a body without a
                # byte order mark that bytes.decode reads.
                yield b"".join((first, *decoded)).decode(charset, "replace")  # type: ignore[arg-type]
                return
            yield decoder.decode(first)
            for chunk in decoded:
                yield decoder.decode(chunk)
            yield decoder.decode(b"", final=True)

        return in_pieces(chunks())

    def _kept_part_bytes(self, part: Message) -> bytes:
        data = part_bytes(part)
        # A part given whole as a message (an attached multipart) may hold left-out bodies:
        # the generator writes each token where its body was, so each goes back in.
        if self.left_out and part.is_multipart():
            held = [token for token in self.left_out if token.encode() in data]
            if held:
                self._check_written_as_read(held)
                for token in held:
                    # Joined from a view: the body is copied once, into the result.
                    before, _, after = data.partition(token.encode())
                    data = b"".join((before, memoryview(self.raw)[slice(*self.left_out[token])],
                                     after))
        return data

    def _attached_message_size(self, part: Message) -> int:
        data = part_bytes(part)
        held = [token for token in self.left_out if token.encode() in data]
        self._check_written_as_read(held)
        return len(data) + sum(self.left_out[token][1] - self.left_out[token][0] - len(token)
                               for token in held)

    def _check_written_as_read(self, tokens: list[str]) -> None:
        # The generator writes a body's lines with CRLF; a body is written back as it was
        # read only when its line ends are all CRLF already (as SMTP stores them).
        for token in tokens:
            start, end = self.left_out[token]
            crlf = self.raw.count(b"\r\n", start, end)
            if not crlf == self.raw.count(b"\r", start, end) == self.raw.count(b"\n", start,
                                                                                end):
                raise _NotLean("an attached message holds a body with other line ends")

    def _span(self, part: Message) -> tuple[int, int] | None:
        if not self.left_out or part.is_multipart():
            return None
        return self.left_out.get(str(part.get_payload()))

    def _decoded_chunks(self, part: Message, span: tuple[int, int]) -> Iterator[bytes]:
        """The body at `span` as get_payload(decode=True) decodes it, a chunk at a time."""
        encoding = _transfer_encoding(part)
        if encoding == "base64":
            return _base64_chunks(self.raw, *span, self.decode_chunk)
        if encoding == "quoted-printable":
            return _quoted_printable_chunks(self.raw, *span, self.decode_chunk)
        if encoding in _UUENCODED:
            raise _NotLean("a uuencoded body")
        return _raw_chunks(self.raw, *span, self.decode_chunk)


def _transfer_encoding(part: Message) -> str:
    # As Message.get_payload(decode=True) reads it: "base64 " is not base64 there.
    return str(part.get("Content-Transfer-Encoding", "")).lower()


def lean_parse(raw: bytes, limits: ParseLimits) -> ParsedRaw:
    """The message parsed, large leaf bodies left out when it is large (lean_parse_from).

    The lean parse is only used where it cannot change what the email package makes of the
    message: headers and structure as the package reads them (every part's header lines
    well-formed, no mbox "From " line), and bodies left out that hold no line the package
    could take for a boundary (none starts with "-"). Each left-out body is replaced by a
    token, and every token must come back as exactly one part's payload; if anything differs,
    the whole message is parsed instead."""
    if len(raw) >= limits.lean_parse_from and not raw.startswith(b"From "):
        spans: list[tuple[int, int]] = []
        first_line_end = raw.find(b"\n")
        # As stored from SMTP (CRLF), or as some IMAP clients append (LF).
        eol = b"\r\n" if first_line_end > 0 and raw[first_line_end - 1] == 13 else b"\n"
        try:
            plain = _find_bodies_to_leave_out(raw, 0, len(raw), spans, 0, eol, limits)
        except PARSE_ERRORS:  # a boundary that is not ASCII, say: the package decides
            plain = False
        if plain and spans:
            tokens = {f"left-out-{secrets.token_hex(16)}": span for span in spans}
            pieces: list[bytes] = []
            position = 0
            for token, (start, end) in tokens.items():
                pieces += [raw[position:start], token.encode()]
                position = end
            pieces.append(raw[position:])
            message = parse_whole(b"".join(pieces))
            payloads = (str(part.get_payload()) for part in message.walk()
                        if not part.is_multipart())
            found = [payload for payload in payloads if payload in tokens]
            if sorted(found) == sorted(tokens):
                return ParsedRaw(message, raw, tokens, limits.decode_chunk)
    return ParsedRaw(parse_whole(raw), raw, {}, limits.decode_chunk)


def _find_bodies_to_leave_out(raw: bytes, start: int, end: int,
                              spans: list[tuple[int, int]], depth: int, eol: bytes,
                              limits: ParseLimits, delimiters: tuple[bytes, ...] = (),
                              digest: bool = False, open_end: bool = False) -> bool:
    """Add to `spans` the large leaf bodies of the part in raw[start:end], whose lines end
    with `eol`, inside multiparts whose delimiter lines start with `delimiters`; False when
    the part is not plain enough to be sure how the email package reads it. `open_end`:
    the part is the last of a multipart that the end of the message cuts short."""
    if depth > limits.max_nesting:
        return False
    if raw.startswith(eol, start):
        # No header lines: text/plain, or in a digest a message, kept.
        if not digest:
            _leave_out_leaf(raw, start + len(eol), end, spans, "", delimiters, open_end,
                            limits.left_out_from)
        return True
    blank = raw.find(eol + eol, start, end)
    if blank < 0:
        return True  # no body: nothing to leave out
    header_lines = raw[start:blank].split(eol)
    if not all(_HEADER_LINE.match(line) and b"\r" not in line and b"\n" not in line
               for line in header_lines):
        return False
    body_start = blank + 2 * len(eol)
    headers = email.parser.BytesHeaderParser(policy=policy.default).parsebytes(
        raw[start:body_start])
    if any(len(value) > limits.max_header_field for name, value in headers.raw_items()
           if name.lower() == "content-type"):
        return False  # its parser is superlinear: the whole parse, once, decides
    content_type = headers.get_content_type()
    if digest and "Content-Type" not in headers:
        content_type = "message/rfc822"  # a digest's default (RFC 2046 section 5.1.5)
    if content_type.startswith("multipart/"):
        boundary = headers.get_boundary()
        if not boundary:
            return False
        delimiter = eol + b"--" + boundary.encode("ascii", "surrogateescape")
        # The first delimiter may open the body; the rest follow a line break.
        position = (body_start - len(eol) if raw.startswith(delimiter[len(eol):], body_start)
                    else raw.find(delimiter, body_start, end))
        while 0 <= position < end:
            line_end = raw.find(eol, position + len(delimiter), end)
            if raw.startswith(b"--", position + len(delimiter)) or line_end < 0:
                return True  # the closing delimiter, or no more lines
            following = raw.find(delimiter, line_end, end)
            part_end = following if following >= 0 else end
            if not _find_bodies_to_leave_out(
                    raw, line_end + len(eol), part_end, spans, depth + 1, eol, limits,
                    (*delimiters, delimiter[len(eol):]), content_type == "multipart/digest",
                    open_end=following < 0 and end == len(raw)):
                return False
            position = following
        return True
    if content_type == "message/rfc822" and _transfer_encoding(headers) in (
            "", "7bit", "8bit", "binary"):
        # The package parses the attached message whole: its bodies can be left out too.
        return _find_bodies_to_leave_out(raw, body_start, end, spans, depth + 1, eol,
                                         limits, delimiters, open_end=open_end)
    if not content_type.startswith("message/"):
        _leave_out_leaf(raw, body_start, end, spans, _transfer_encoding(headers), delimiters,
                        open_end, limits.left_out_from)
    return True


def _leave_out_leaf(raw: bytes, start: int, end: int, spans: list[tuple[int, int]],
                    encoding: str, delimiters: tuple[bytes, ...], open_end: bool,
                    left_out_from: int) -> None:
    """Leave out the leaf body raw[start:end] when it is large and holds no line that the
    package could take for the delimiter of a multipart around it (it ends a part at any
    enclosing one's delimiter, and breaks lines at CR as well as LF)."""
    if open_end:
        # The package drops the line end that ends a multipart cut short: the token is put
        # before it, and must come back alone (a body that would lose more is kept).
        end -= 2 if raw.endswith(b"\r\n", start, end) else raw.endswith((b"\r", b"\n"),
                                                                         start, end)
        if raw.endswith((b"\r", b"\n"), start, end):
            return
    if end - start < left_out_from or encoding in _UUENCODED:
        return
    if (raw.startswith(b"--", start) or raw.find(b"\n--", start, end) >= 0
            or raw.find(b"\r--", start, end) >= 0):
        # One pass finds no line that starts like a delimiter, mostly; else one per level.
        for delimiter in delimiters:
            if (raw.startswith(delimiter, start) or raw.find(b"\n" + delimiter, start, end) >= 0
                    or raw.find(b"\r" + delimiter, start, end) >= 0):
                return
    spans.append((start, end))


def _base64_chunks(raw: bytes, start: int, end: int, chunk: int) -> Iterator[bytes]:
    """raw[start:end] decoded as the email package decodes a well-formed base64 body (line
    breaks dropped), a chunk at a time; _NotLean for a body it would decode with defects."""
    pending = b""
    for position in range(start, end, chunk):
        chunk_end = min(position + chunk, end)
        pending += raw[position:chunk_end].replace(b"\r", b"").replace(b"\n", b"")
        usable = len(pending) - len(pending) % 4
        if chunk_end == end and usable != len(pending):
            raise _NotLean("a base64 body whose length is not a multiple of 4")
        try:
            yield binascii.a2b_base64(pending[:usable], strict_mode=True)
        except binascii.Error as exc:
            raise _NotLean("a base64 body the package would decode with defects") from exc
        pending = pending[usable:]


def _quoted_printable_chunks(raw: bytes, start: int, end: int, chunk: int) -> Iterator[bytes]:
    """raw[start:end] decoded as quopri.decodestring decodes it, whole lines at a time (an
    escape or a soft line break never spans a line)."""
    position = start
    while position < end:
        cut = raw.find(b"\n", min(position + chunk, end) - 1, end)
        chunk_end = end if cut < 0 else cut + 1
        yield binascii.a2b_qp(raw[position:chunk_end])
        position = chunk_end


def _raw_chunks(raw: bytes, start: int, end: int, chunk: int) -> Iterator[bytes]:
    for position in range(start, end, chunk):
        yield raw[position:min(position + chunk, end)]
