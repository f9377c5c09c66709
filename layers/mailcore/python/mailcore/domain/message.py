"""Reading RFC 5322 messages for display. The raw bytes stay the source of truth.

Parsing never raises and is bounded, whatever the input: a message the `email` package
cannot make sense of, or one too complex to parse within the bounds below, is still a
message, summarised as far as possible from its header lines and marked with its parse
problem. Its raw bytes are kept and served whole.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.errors
import email.header
import email.parser
import email.utils
import hashlib
import re
import secrets
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from typing import Any, TypeVar

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS

SNIPPET_LENGTH = 200
# Bounds on what the email package is given (issue: hostile MIME), shared with the IMAP
# edge (domain/mime_limits.py says why these). Here MAX_PARTS bounds the lines that start
# with "--" and MAX_NESTING the multipart/* and message/* declarations. A header field of
# 8,000 quote characters takes 0.6 s to parse (superlinear), and nested comments recurse.
MAX_HEADER_FIELD = 8 * 1024  # a longer field is shown unparsed (its parser is superlinear)
MAX_HEADER_BLOCK = 1024 * 1024  # past this the header lines are not read for display
# The email package reads a Content-Type or Content-Disposition field again each time a
# part's type, boundary or parameters are asked for, about 0.3 ms per parameter per read:
# 4,000 parameters (RFC 2231 continuations or plain ones, in one field or spread over the
# parts) took 1.3 s, 16,000 took 5 s, and in the IMAP edge's threads no clock stops it
# (an APPEND of 20,000 held a worker and the GIL for over 10 s). Real mail has a few per part.
MAX_CONTENT_PARAMETERS = 4000  # parameters in all Content-Type/-Disposition fields together
PARSE_SECONDS = 5.0  # wall-clock backstop for whatever the bounds above do not foresee
EXPIRY_REPEAT_SECONDS = 0.05
_PARSE_ERRORS = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    email.errors.MessageError,
)
# A declaration that opens a level; folded or commented ones escape this count, and then
# the recursion limit and the clock still bound the parse (see _bounded).
_NESTING = re.compile(rb"(?i)(?:\A|\n)content-type[ \t]*:[ \t]*(?:\r?\n[ \t]+)?"
                      rb"(?:multipart|message)/")
# A Content-Type or Content-Disposition field, folded lines and all (linear: each
# repetition ends at a line break).
_CONTENT_FIELD = re.compile(rb"(?im)^content-(?:type|disposition)[ \t]*:"
                            rb"(?:[^\n]*\n[ \t])*[^\n]*")
# Memory in proportion to the message (issue 14): the email package holds a message several
# times over while it parses (161 MiB traced for a 24.4 MiB message with three binary
# attachments). A message this large is parsed without the bodies of its large base64
# parts, which are decoded from the raw bytes only when their size or content is asked for.
LEAN_PARSE_FROM = 1024 * 1024
# A leaf body this large is left out of the parse: past its token's size, and small
# enough that a thousand parts of one-character lines are not a thousand lists of lines.
LEFT_OUT_FROM = 256
DECODE_CHUNK = 1024 * 1024  # base64 characters decoded at a time (a multiple of 4)
# Every shape of message (issue 25): the email package keeps a str per line, so 20 MiB of
# empty or one-character lines took 743-940 MiB to parse. Every leaf body of a large
# message is left out (text too, whatever its encoding); a text body is read from the raw
# bytes a chunk at a time, for the snippet only as far as the snippet needs, and shown up
# to SHOWN_TEXT characters (Lambda answers at most 6 MB; the raw message is served whole).
SHOWN_TEXT = 1024 * 1024
# Text is folded and stripped of tags this many characters at a time: a regular
# expression's substitution holds a piece per match, 16 MiB more for a 1 MiB piece of
# one-character lines (bench/memory.py).
TEXT_PIECE = 64 * 1024
_UUENCODED = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_T = TypeVar("_T")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str | None
    content_type: str
    size: int
    # Set on a part that an HTML body shows inline (`<img src="cid:...">`), without <>.
    content_id: str | None = None


@dataclass(frozen=True)
class MessageSummary:
    from_: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: str | None  # ISO 8601 when the Date header parses
    message_id_header: str | None
    snippet: str
    has_attachments: bool
    parse_problem: str | None
    thread_id: str | None = None  # None: the message starts its own thread


@dataclass(frozen=True)
class MessageContent:
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...]
    in_reply_to: str | None
    references: str | None
    # Only a draft keeps a Bcc header (sent mail never shows one); a user agent needs it
    # to open the draft again.
    bcc: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentContent:
    filename: str | None
    content_type: str
    # A large part is decoded into a bytearray, which a copy into bytes would double.
    data: bytes | bytearray


def search_text(summary: MessageSummary) -> str:
    """What search matches against, in lower case: from, to, cc, subject and snippet."""
    return "\n".join((summary.from_, *summary.to, *summary.cc, summary.subject,
                      summary.snippet)).casefold()


class ParseTimeout(Exception):
    """Parsing took longer than PARSE_SECONDS."""


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def complexity_problem(raw: bytes) -> str | None:
    """Why `raw` is beyond what is parsed structurally, or None. Counting costs one pass."""
    if raw.count(b"\n--") + raw.startswith(b"--") > MAX_PARTS:
        return "TooManyParts"
    for declarations, _ in enumerate(_NESTING.finditer(raw), start=1):
        if declarations > MAX_NESTING:
            return "TooDeeplyNested"
    if _header_block_size(raw) > MAX_HEADER_BLOCK:
        return "OversizedHeader"
    parameters = 0
    for field in _CONTENT_FIELD.finditer(raw):
        if field.end() - field.start() > MAX_HEADER_FIELD:
            return "OversizedContentField"
        parameters += field.group().count(b";")
        if parameters > MAX_CONTENT_PARAMETERS:
            return "TooManyParameters"
    return None


def summarise(raw: bytes) -> MessageSummary:
    return _bounded(raw, _summarise, _summary_from_header_lines)


def read_content(raw: bytes) -> MessageContent:
    return _bounded(raw, _read_content, _content_from_header_lines)


def attachment_content(raw: bytes, index: int) -> AttachmentContent | None:
    """The decoded attachment at `index` (as numbered by read_content), or None."""
    return _bounded(raw, lambda whole: _attachment_content(whole, index),
                    lambda whole, problem: None)


def _bounded(raw: bytes, parsed: Callable[[bytes], _T],
             fallback: Callable[[bytes, str], _T]) -> _T:
    """`parsed(raw)` within the bounds, else `fallback(raw, problem)` from header lines."""
    problem = complexity_problem(raw)
    if problem is not None:
        return fallback(raw, problem)
    try:
        with _time_limit(PARSE_SECONDS):
            return parsed(raw)
    except ParseTimeout:
        return fallback(raw, "ParseTimeout")
    except RecursionError:
        return fallback(raw, "TooDeeplyNested")
    except Exception:  # noqa: BLE001
        # The promise is "every accepted message is filed and readable": a parser bug
        # nobody foresaw must degrade this one message, not fail its filing forever.
        return fallback(raw, "Unparseable")


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ParseTimeout in the parse after `seconds` (a real-time timer: Lambda runs
    handlers on the main thread). Elsewhere, or with a timer already set, no limit."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ParseTimeout(f"parse took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    # Raised again every EXPIRY_REPEAT_SECONDS until it ends the parse: the signal handler
    # runs in whatever Python code is current, and an exception raised in a garbage
    # collector's callback or a __del__ is printed and dropped (seen under hypothesis,
    # whose gc callback took the one ParseTimeout of a hostile message's parse).
    signal.setitimer(signal.ITIMER_REAL, seconds, EXPIRY_REPEAT_SECONDS)
    try:
        yield
    finally:
        _stop_timer(previous)


def _stop_timer(previous: Any) -> None:
    # A tick due as the timer is stopped raises here too; stopping must still finish, or the
    # repeating timer would go on raising in whatever runs after the parse.
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            return
        except ParseTimeout:
            continue


class _NotLean(Exception):
    """The lean parse cannot stand in for the whole one here; parse the whole message."""


@dataclass(frozen=True)
class _Parsed:
    """A parsed message, and where the bodies left out of the parse are in the raw bytes:
    each such part's payload is a token that names its body's (start, end)."""

    message: EmailMessage
    raw: bytes
    left_out: dict[str, tuple[int, int]]

    def part_bytes(self, part: Message) -> bytes | bytearray:
        """What `_part_bytes` gives, for a part whose body may have been left out."""
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

        return _pieces(chunks())

    def _kept_part_bytes(self, part: Message) -> bytes:
        data = _part_bytes(part)
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
        data = _part_bytes(part)
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
            return _base64_chunks(self.raw, *span)
        if encoding == "quoted-printable":
            return _quoted_printable_chunks(self.raw, *span)
        if encoding in _UUENCODED:
            raise _NotLean("a uuencoded body")
        return _raw_chunks(self.raw, *span)


def _transfer_encoding(part: Message) -> str:
    # As Message.get_payload(decode=True) reads it: "base64 " is not base64 there.
    return str(part.get("Content-Transfer-Encoding", "")).lower()


def _parsed(raw: bytes) -> _Parsed:
    """The message parsed, large base64 bodies left out when it is large (LEAN_PARSE_FROM).

    The lean parse is only used where it cannot change what the email package makes of the
    message: headers and structure as the package reads them (every part's header lines
    well-formed, no mbox "From " line), and bodies left out that hold no line the package
    could take for a boundary (none starts with "-"). Each left-out body is replaced by a
    token, and every token must come back as exactly one part's payload; if anything differs,
    the whole message is parsed instead."""
    if len(raw) >= LEAN_PARSE_FROM and not raw.startswith(b"From "):
        spans: list[tuple[int, int]] = []
        first_line_end = raw.find(b"\n")
        # As stored from SMTP (CRLF), or as some IMAP clients append (LF).
        eol = b"\r\n" if first_line_end > 0 and raw[first_line_end - 1] == 13 else b"\n"
        try:
            plain = _find_bodies_to_leave_out(raw, 0, len(raw), spans, 0, eol)
        except _PARSE_ERRORS:  # a boundary that is not ASCII, say: the package decides
            plain = False
        if plain and spans:
            tokens = {f"left-out-{secrets.token_hex(16)}": span for span in spans}
            pieces: list[bytes] = []
            position = 0
            for token, (start, end) in tokens.items():
                pieces += [raw[position:start], token.encode()]
                position = end
            pieces.append(raw[position:])
            message = parse(b"".join(pieces))
            payloads = (str(part.get_payload()) for part in message.walk()
                        if not part.is_multipart())
            found = [payload for payload in payloads if payload in tokens]
            if sorted(found) == sorted(tokens):
                return _Parsed(message, raw, tokens)
    return _Parsed(parse(raw), raw, {})


_HEADER_LINE = re.compile(rb"[\041-\071\073-\176]+:|[ \t]")


def _find_bodies_to_leave_out(raw: bytes, start: int, end: int,
                              spans: list[tuple[int, int]], depth: int, eol: bytes,
                              delimiters: tuple[bytes, ...] = (), digest: bool = False,
                              open_end: bool = False) -> bool:
    """Add to `spans` the large leaf bodies of the part in raw[start:end], whose lines end
    with `eol`, inside multiparts whose delimiter lines start with `delimiters`; False when
    the part is not plain enough to be sure how the email package reads it. `open_end`:
    the part is the last of a multipart that the end of the message cuts short."""
    if depth > MAX_NESTING:
        return False
    if raw.startswith(eol, start):
        # No header lines: text/plain, or in a digest a message, kept.
        if not digest:
            _leave_out_leaf(raw, start + len(eol), end, spans, "", delimiters, open_end)
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
    if any(len(value) > MAX_HEADER_FIELD for name, value in headers.raw_items()
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
                    raw, line_end + len(eol), part_end, spans, depth + 1, eol,
                    (*delimiters, delimiter[len(eol):]), content_type == "multipart/digest",
                    open_end=following < 0 and end == len(raw)):
                return False
            position = following
        return True
    if content_type == "message/rfc822" and _transfer_encoding(headers) in (
            "", "7bit", "8bit", "binary"):
        # The package parses the attached message whole: its bodies can be left out too.
        return _find_bodies_to_leave_out(raw, body_start, end, spans, depth + 1, eol,
                                         delimiters, open_end=open_end)
    if not content_type.startswith("message/"):
        _leave_out_leaf(raw, body_start, end, spans, _transfer_encoding(headers), delimiters,
                        open_end)
    return True


def _leave_out_leaf(raw: bytes, start: int, end: int, spans: list[tuple[int, int]],
                    encoding: str, delimiters: tuple[bytes, ...], open_end: bool) -> None:
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
    if end - start < LEFT_OUT_FROM or encoding in _UUENCODED:
        return
    if (raw.startswith(b"--", start) or raw.find(b"\n--", start, end) >= 0
            or raw.find(b"\r--", start, end) >= 0):
        # One pass finds no line that starts like a delimiter, mostly; else one per level.
        for delimiter in delimiters:
            if (raw.startswith(delimiter, start) or raw.find(b"\n" + delimiter, start, end) >= 0
                    or raw.find(b"\r" + delimiter, start, end) >= 0):
                return
    spans.append((start, end))


def _base64_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    """raw[start:end] decoded as the email package decodes a well-formed base64 body (line
    breaks dropped), a chunk at a time; _NotLean for a body it would decode with defects."""
    pending = b""
    for position in range(start, end, DECODE_CHUNK):
        chunk_end = min(position + DECODE_CHUNK, end)
        pending += raw[position:chunk_end].replace(b"\r", b"").replace(b"\n", b"")
        usable = len(pending) - len(pending) % 4
        if chunk_end == end and usable != len(pending):
            raise _NotLean("a base64 body whose length is not a multiple of 4")
        try:
            yield binascii.a2b_base64(pending[:usable], strict_mode=True)
        except binascii.Error as exc:
            raise _NotLean("a base64 body the package would decode with defects") from exc
        pending = pending[usable:]


def _quoted_printable_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    """raw[start:end] decoded as quopri.decodestring decodes it, whole lines at a time (an
    escape or a soft line break never spans a line)."""
    position = start
    while position < end:
        cut = raw.find(b"\n", min(position + DECODE_CHUNK, end) - 1, end)
        chunk_end = end if cut < 0 else cut + 1
        yield binascii.a2b_qp(raw[position:chunk_end])
        position = chunk_end


def _raw_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    for position in range(start, end, DECODE_CHUNK):
        yield raw[position:min(position + DECODE_CHUNK, end)]


def _lean_or_whole(raw: bytes, read: Callable[[_Parsed], _T]) -> _T:
    try:
        return read(_parsed(raw))
    except _NotLean:
        return read(_Parsed(parse(raw), raw, {}))


def _summarise(raw: bytes) -> MessageSummary:
    return _lean_or_whole(raw, _summary)


def _summary(parsed: _Parsed) -> MessageSummary:
    problems: list[str] = []
    message = parsed.message
    problems.extend(type(defect).__name__ for defect in message.defects)
    if not message.keys():
        problems.append("NoHeaders")
    date = _iso_date(_header(message, "Date", problems), problems)
    text, html = _bodies(parsed, problems)
    snippet = _folded_head(text if text is not None else _without_tags(html or ()))
    return MessageSummary(
        from_=_header(message, "From", problems) or "",
        to=_addresses(message, "To", problems),
        cc=_addresses(message, "Cc", problems),
        subject=_header(message, "Subject", problems) or "",
        date=date,
        message_id_header=_header(message, "Message-ID", problems),
        snippet=snippet,
        has_attachments=any(attachment.content_id is None
                            for attachment in _attachments(parsed, problems)),
        parse_problem=_problems(problems),
        thread_id=_thread_id(lambda name: _header(message, name, problems)),
    )


def _read_content(raw: bytes) -> MessageContent:
    return _lean_or_whole(raw, _content)


def _content(parsed: _Parsed) -> MessageContent:
    problems: list[str] = []
    message = parsed.message
    text, html = _bodies(parsed, problems)
    return MessageContent(
        text=None if text is None else _shown(text),
        html=None if html is None else _shown(html),
        attachments=tuple(_attachments(parsed, problems)),
        in_reply_to=_header(message, "In-Reply-To", problems),
        references=_header(message, "References", problems),
        bcc=_addresses(message, "Bcc", problems),
    )


def _attachment_content(raw: bytes, index: int) -> AttachmentContent | None:
    return _lean_or_whole(raw, lambda parsed: _attachment_at(parsed, index))


def _attachment_at(parsed: _Parsed, index: int) -> AttachmentContent | None:
    try:
        parts = _attachment_parts(parsed.message)
        if not 0 <= index < len(parts):
            return None
        part, _ = parts[index]
        return AttachmentContent(part.get_filename(), part.get_content_type(),
                                 parsed.part_bytes(part))
    except _PARSE_ERRORS:
        return None


# ---- beyond the bounds: the header lines, read without the email package -------------------
def _summary_from_header_lines(raw: bytes, problem: str) -> MessageSummary:
    fields = _header_lines(raw)

    def field(name: str) -> str | None:
        return fields.get(name.lower())

    problems = [problem]
    return MessageSummary(
        from_=field("From") or "",
        to=tuple(filter(None, [field("To")])),
        cc=tuple(filter(None, [field("Cc")])),
        subject=field("Subject") or "",
        date=_iso_date(field("Date"), problems),
        message_id_header=field("Message-ID"),
        snippet="",
        has_attachments=False,
        parse_problem=_problems(problems),
        thread_id=_thread_id(field),
    )


def _content_from_header_lines(raw: bytes, problem: str) -> MessageContent:
    fields = _header_lines(raw)
    return MessageContent(text=None, html=None, attachments=(),
                          in_reply_to=fields.get("in-reply-to"),
                          references=fields.get("references"))


_DISPLAY_FIELDS = frozenset({"from", "to", "cc", "subject", "date", "message-id",
                             "in-reply-to", "references"})


def _header_lines(raw: bytes) -> dict[str, str]:
    """The first of each displayed field among the header lines, unfolded and with
    encoded words decoded, each at most MAX_HEADER_FIELD characters: linear in the input."""
    block = raw[:min(_header_block_size(raw), MAX_HEADER_BLOCK)]
    fields: dict[str, str] = {}
    name, value = "", ""
    for line in [*block.replace(b"\r\n", b"\n").split(b"\n"), b""]:
        if line[:1] in (b" ", b"\t") and name:
            if len(value) < MAX_HEADER_FIELD:
                value += " " + line.strip().decode("utf-8", "replace")
            continue
        if name in _DISPLAY_FIELDS and name not in fields:
            fields[name] = _decoded_words(value.strip()[:MAX_HEADER_FIELD])
        head, colon, rest = line.partition(b":")
        name = head.strip().decode("ascii", "replace").lower() if colon else ""
        value = rest.decode("utf-8", "replace")
    return fields


def _decoded_words(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except _PARSE_ERRORS:
        return value


def _header_block_size(raw: bytes) -> int:
    ends = [end for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if end >= 0]
    return min(ends) if ends else len(raw)


def _problems(problems: list[str]) -> str | None:
    return ",".join(sorted(set(problems))) or None


def _iso_date(date_header: str | None, problems: list[str]) -> str | None:
    if not date_header:
        return None
    try:
        return email.utils.parsedate_to_datetime(date_header).isoformat()
    except _PARSE_ERRORS:
        problems.append("InvalidDate")
        return None


def _thread_id(field: Callable[[str], str | None]) -> str | None:
    """Messages of one conversation share the id of its first message (the first of
    References, else In-Reply-To, else their own Message-ID), hashed to a short id."""
    candidates = [
        *(field("References") or "").split()[:1],
        *(field("In-Reply-To") or "").split()[:1],
        *(field("Message-ID") or "").split()[:1],
    ]
    if not candidates:
        return None
    return hashlib.sha256(candidates[0].encode("utf-8", "replace")).hexdigest()[:24]


def _part_bytes(part: Message) -> bytes:
    if part.is_multipart():
        # An attached message (message/rfc822) is given as the message it carries.
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return b""
        return inner.as_bytes(policy=inner.policy.clone(linesep="\r\n"))
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _header(message: Message, name: str, problems: list[str]) -> str | None:
    try:
        value = _field(message, name, problems)
        return None if value is None else str(value)
    except _PARSE_ERRORS:
        problems.append(f"Unreadable{name.replace('-', '')}")
        return None


def _field(message: Message, name: str, problems: list[str]) -> object | None:
    """The first `name` field, parsed, unless it is too long to parse safely (the
    structured header parser recurses per nested comment); then its raw text."""
    for found, raw_value in message.raw_items():
        if found.lower() != name.lower():
            continue
        if len(raw_value) > MAX_HEADER_FIELD:
            problems.append(f"Oversized{name.replace('-', '')}")
            return raw_value[:MAX_HEADER_FIELD]
        return message.policy.header_fetch_parse(found, raw_value)
    return None


def _addresses(message: Message, name: str, problems: list[str]) -> tuple[str, ...]:
    try:
        header = _field(message, name, problems)
        if header is None:
            return ()
        addresses = getattr(header, "addresses", None)
        if addresses is None:
            return (str(header),)
        return tuple(str(address) for address in addresses)
    except _PARSE_ERRORS:
        problems.append(f"Unreadable{name}")
        return ()


_Text = Iterable[str]  # a body's text, in pieces: a left-out body is read a chunk at a time


def _bodies(parsed: _Parsed, problems: list[str]) -> tuple[_Text | None, _Text | None]:
    text = html = None
    for subtype in ("plain", "html"):
        content: _Text | None
        try:
            part = parsed.message.get_body(preferencelist=(subtype,))
            if part is None:
                continue
            content = parsed.text_chunks(part)
            if content is None:
                whole = part.get_content()
                content = _pieces([whole]) if isinstance(whole, str) else None
        except _PARSE_ERRORS:
            problems.append(f"Unreadable{subtype.title()}Body")
            continue
        if content is None:
            continue
        if subtype == "plain":
            text = content
        else:
            html = content
    return text, html


def _pieces(text: _Text) -> Iterator[str]:
    for chunk in text:
        for start in range(0, len(chunk), TEXT_PIECE):
            yield chunk[start:start + TEXT_PIECE]


def _shown(text: _Text) -> str:
    """The text up to SHOWN_TEXT characters; what is past that is not read."""
    pieces: list[str] = []
    length = 0
    for piece in text:
        pieces.append(piece[:SHOWN_TEXT - length])
        length += len(pieces[-1])
        if length >= SHOWN_TEXT:
            break
    return "".join(pieces)


def _folded_head(text: _Text) -> str:
    """_SPACE.sub(" ", text).strip()[:SNIPPET_LENGTH], reading only as far as it needs:
    runs of white space folded piece by piece come out as folding the whole would."""
    head = ""
    for piece in text:
        head = _SPACE.sub(" ", head + piece).lstrip()
        if len(head) > SNIPPET_LENGTH + 1:
            break
    return head.strip()[:SNIPPET_LENGTH]


def _without_tags(html: _Text) -> Iterator[str]:
    """_TAG.sub(" ", html), piece by piece. A piece is cut before the first "<" after its
    last ">": every tag that starts before the cut ends before it, and what follows the cut
    waits, kept in pieces (never joined), for the ">" that ends it as a tag. Of text that
    no ">" ends, only the first SHOWN_TEXT characters are kept: no reader goes further
    (the snippet of 200 then misses words that follow a megabyte of white space)."""
    pending: list[str] = []  # a "<" and what follows it, without a ">"
    kept = 0
    for piece in html:
        if pending:
            close = piece.find(">")
            if close < 0:
                if kept < SHOWN_TEXT:
                    pending.append(piece)
                    kept += len(piece)
                continue
            pending = []
            yield " "  # the tag that the pending "<" opened
            piece = piece[close + 1:]
        cut = piece.find("<", piece.rfind(">") + 1)
        if cut < 0:
            cut = len(piece)
        yield _TAG.sub(" ", piece[:cut])
        if cut < len(piece):
            pending = [piece[cut:]]
            kept = len(pending[0])
    yield from pending  # an unclosed "<" and what follows it: no tag


def _attachment_parts(message: EmailMessage) -> list[tuple[EmailMessage, str | None]]:
    """The attachments, then the parts an HTML body shows inline (RFC 2387).

    iter_attachments leaves out the parts of a multipart/related that holds the body, so
    those come after, in the order they appear: every earlier index stays what it was.
    """
    if not message.is_multipart():
        return []
    parts: list[tuple[EmailMessage, str | None]] = [
        (part, None) for part in message.iter_attachments()]
    listed = {id(part) for part, _ in parts}
    for container in message.walk():
        if container.get_content_type() != "multipart/related":
            continue
        # The first part is the related's root, the body itself (RFC 2387 section 3.2).
        for part in list(container.iter_parts())[1:]:
            content_id = str(part.get("Content-ID") or "").strip().strip("<>").strip()
            if content_id and id(part) not in listed and not part.is_multipart():
                parts.append((part, content_id))  # type: ignore[arg-type]
                listed.add(id(part))
    return parts


def _attachments(parsed: _Parsed, problems: list[str]) -> list[Attachment]:
    found: list[Attachment] = []
    try:
        parts = _attachment_parts(parsed.message)
    except _PARSE_ERRORS:
        problems.append("UnreadableAttachments")
        return found
    for index, (part, content_id) in enumerate(parts):
        try:
            found.append(
                Attachment(
                    index=index,
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    size=parsed.part_size(part),
                    content_id=content_id,
                )
            )
        except _PARSE_ERRORS:
            problems.append("UnreadableAttachment")
    return found
