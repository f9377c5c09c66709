"""A message as it is shown: what a folder lists of it (its summary), what a reader opens
(text, HTML, attachments) and an attachment's bytes, read from its parse. The raw bytes stay
the source of truth.

Reading never raises: a field or body the email package cannot make sense of is left out
and named in the summary's parse problem. How a message is parsed, and within which bounds
(a hostile message is still summarised, from its header lines), is mailcore/parsing/.
"""

from __future__ import annotations

import email.errors
import email.utils
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Protocol

SNIPPET_LENGTH = 200
# Every shape of message (issue 25): the email package keeps a str per line, so 20 MiB of
# empty or one-character lines took 743-940 MiB to parse. A text body is read a chunk at a
# time, for the snippet only as far as the snippet needs, and shown up to SHOWN_TEXT
# characters (Lambda answers at most 6 MB; the raw message is served whole).
SHOWN_TEXT = 1024 * 1024
# Text is folded and stripped of tags this many characters at a time: a regular
# expression's substitution holds a piece per match, 16 MiB more for a 1 MiB piece of
# one-character lines (bench/memory.py).
TEXT_PIECE = 64 * 1024
# What the email package raises on input it cannot read.
PARSE_ERRORS = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    email.errors.MessageError,
)
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


Text = Iterable[str]  # a body's text, in pieces: a left-out body is read a chunk at a time


class ParsedMessage(Protocol):
    """A parse, and the bodies of its parts, some of which may be read from the raw bytes
    rather than from the parse (mailcore/parsing/lean.py)."""

    @property
    def message(self) -> EmailMessage: ...

    def part_bytes(self, part: Message) -> bytes | bytearray:
        """The part's decoded body; an attached message's bytes."""

    def part_size(self, part: Message) -> int: ...

    def text_chunks(self, part: Message) -> Iterator[str] | None:
        """The part's text in pieces, or None: then its get_content() is the text."""


def summary_of(parsed: ParsedMessage, max_header_field: int) -> MessageSummary:
    """What a folder lists of the message; a header field longer than `max_header_field`
    is shown unparsed (its parser is superlinear)."""
    problems: list[str] = []
    message = parsed.message
    problems.extend(type(defect).__name__ for defect in message.defects)
    if not message.keys():
        problems.append("NoHeaders")

    def header(name: str) -> str | None:
        return _header(message, name, problems, max_header_field)

    def addresses(name: str) -> tuple[str, ...]:
        return _addresses(message, name, problems, max_header_field)

    date = iso_date(header("Date"), problems)
    text, html = _bodies(parsed, problems)
    snippet = _folded_head(text if text is not None else _without_tags(html or ()))
    return MessageSummary(
        from_=header("From") or "",
        to=addresses("To"),
        cc=addresses("Cc"),
        subject=header("Subject") or "",
        date=date,
        message_id_header=header("Message-ID"),
        snippet=snippet,
        has_attachments=any(attachment.content_id is None
                            for attachment in _attachments(parsed, problems)),
        parse_problem=joined_problems(problems),
        thread_id=thread_id(header),
    )


def content_of(parsed: ParsedMessage, max_header_field: int) -> MessageContent:
    """What a reader opens: the text and HTML (up to SHOWN_TEXT each), the attachments."""
    problems: list[str] = []
    message = parsed.message
    text, html = _bodies(parsed, problems)
    return MessageContent(
        text=None if text is None else _shown(text),
        html=None if html is None else _shown(html),
        attachments=tuple(_attachments(parsed, problems)),
        in_reply_to=_header(message, "In-Reply-To", problems, max_header_field),
        references=_header(message, "References", problems, max_header_field),
        bcc=_addresses(message, "Bcc", problems, max_header_field),
    )


def attachment_of(parsed: ParsedMessage, index: int) -> AttachmentContent | None:
    """The decoded attachment at `index` (as content_of numbers them), or None."""
    try:
        parts = _attachment_parts(parsed.message)
        if not 0 <= index < len(parts):
            return None
        part, _ = parts[index]
        return AttachmentContent(part.get_filename(), part.get_content_type(),
                                 parsed.part_bytes(part))
    except PARSE_ERRORS:
        return None


def joined_problems(problems: list[str]) -> str | None:
    """The summary's parse_problem: each problem once, in order, comma-separated."""
    return ",".join(sorted(set(problems))) or None


def iso_date(date_header: str | None, problems: list[str]) -> str | None:
    if not date_header:
        return None
    try:
        return email.utils.parsedate_to_datetime(date_header).isoformat()
    except PARSE_ERRORS:
        problems.append("InvalidDate")
        return None


def thread_id(field: Callable[[str], str | None]) -> str | None:
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


def part_bytes(part: Message) -> bytes:
    """A parsed part's decoded body, or the bytes of the message it attaches."""
    if part.is_multipart():
        # An attached message (message/rfc822) is given as the message it carries.
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return b""
        return inner.as_bytes(policy=inner.policy.clone(linesep="\r\n"))
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _header(message: Message, name: str, problems: list[str],
            max_field: int) -> str | None:
    try:
        value = _field(message, name, problems, max_field)
        return None if value is None else str(value)
    except PARSE_ERRORS:
        problems.append(f"Unreadable{name.replace('-', '')}")
        return None


def _field(message: Message, name: str, problems: list[str], max_field: int) -> object | None:
    """The first `name` field, parsed, unless it is too long to parse safely (the
    structured header parser recurses per nested comment); then its raw text."""
    for found, raw_value in message.raw_items():
        if found.lower() != name.lower():
            continue
        if len(raw_value) > max_field:
            problems.append(f"Oversized{name.replace('-', '')}")
            return raw_value[:max_field]
        return message.policy.header_fetch_parse(found, raw_value)
    return None


def _addresses(message: Message, name: str, problems: list[str],
               max_field: int) -> tuple[str, ...]:
    try:
        header = _field(message, name, problems, max_field)
        if header is None:
            return ()
        addresses = getattr(header, "addresses", None)
        if addresses is None:
            return (str(header),)
        return tuple(str(address) for address in addresses)
    except PARSE_ERRORS:
        problems.append(f"Unreadable{name}")
        return ()


def _bodies(parsed: ParsedMessage, problems: list[str]) -> tuple[Text | None, Text | None]:
    text = html = None
    for subtype in ("plain", "html"):
        content: Text | None
        try:
            part = parsed.message.get_body(preferencelist=(subtype,))
            if part is None:
                continue
            content = parsed.text_chunks(part)
            if content is None:
                whole = part.get_content()
                content = in_pieces([whole]) if isinstance(whole, str) else None
        except PARSE_ERRORS:
            problems.append(f"Unreadable{subtype.title()}Body")
            continue
        if content is None:
            continue
        if subtype == "plain":
            text = content
        else:
            html = content
    return text, html


def in_pieces(text: Text) -> Iterator[str]:
    """The text cut into pieces of at most TEXT_PIECE characters."""
    for chunk in text:
        for start in range(0, len(chunk), TEXT_PIECE):
            yield chunk[start:start + TEXT_PIECE]


def _shown(text: Text) -> str:
    """The text up to SHOWN_TEXT characters; what is past that is not read."""
    pieces: list[str] = []
    length = 0
    for piece in text:
        pieces.append(piece[:SHOWN_TEXT - length])
        length += len(pieces[-1])
        if length >= SHOWN_TEXT:
            break
    return "".join(pieces)


def _folded_head(text: Text) -> str:
    """_SPACE.sub(" ", text).strip()[:SNIPPET_LENGTH], reading only as far as it needs:
    runs of white space folded piece by piece come out as folding the whole would."""
    head = ""
    for piece in text:
        head = _SPACE.sub(" ", head + piece).lstrip()
        if len(head) > SNIPPET_LENGTH + 1:
            break
    return head.strip()[:SNIPPET_LENGTH]


def _without_tags(html: Text) -> Iterator[str]:
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


def _attachments(parsed: ParsedMessage, problems: list[str]) -> list[Attachment]:
    found: list[Attachment] = []
    try:
        parts = _attachment_parts(parsed.message)
    except PARSE_ERRORS:
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
        except PARSE_ERRORS:
            problems.append("UnreadableAttachment")
    return found
