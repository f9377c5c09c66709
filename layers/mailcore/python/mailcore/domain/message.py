"""Reading RFC 5322 messages for display. The raw bytes stay the source of truth.

Parsing never raises: a message the `email` package cannot make sense of is still
a message, summarised as far as possible and marked with its parse problem.
"""

from __future__ import annotations

import email
import email.errors
import email.utils
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message

SNIPPET_LENGTH = 200
_PARSE_ERRORS = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
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


@dataclass(frozen=True)
class AttachmentContent:
    filename: str | None
    content_type: str
    data: bytes


def search_text(summary: MessageSummary) -> str:
    """What search matches against, in lower case: from, to, cc, subject and snippet."""
    return "\n".join((summary.from_, *summary.to, *summary.cc, summary.subject,
                      summary.snippet)).casefold()


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def summarise(raw: bytes) -> MessageSummary:
    problems: list[str] = []
    message = parse(raw)
    problems.extend(type(defect).__name__ for defect in message.defects)
    if not message.keys():
        problems.append("NoHeaders")
    date = None
    date_header = _header(message, "Date", problems)
    if date_header:
        try:
            parsed = email.utils.parsedate_to_datetime(date_header)
            date = parsed.isoformat()
        except _PARSE_ERRORS:
            problems.append("InvalidDate")
    text, html = _bodies(message, problems)
    snippet_source = text if text is not None else _TAG.sub(" ", html or "")
    return MessageSummary(
        from_=_header(message, "From", problems) or "",
        to=_addresses(message, "To", problems),
        cc=_addresses(message, "Cc", problems),
        subject=_header(message, "Subject", problems) or "",
        date=date,
        message_id_header=_header(message, "Message-ID", problems),
        snippet=_SPACE.sub(" ", snippet_source).strip()[:SNIPPET_LENGTH],
        has_attachments=bool(_attachments(message, problems)),
        parse_problem=",".join(sorted(set(problems))) or None,
        thread_id=_thread_id(message, problems),
    )


def _thread_id(message: Message, problems: list[str]) -> str | None:
    """Messages of one conversation share the id of its first message (the first of
    References, else In-Reply-To, else their own Message-ID), hashed to a short id."""
    candidates = [
        *(_header(message, "References", problems) or "").split()[:1],
        *(_header(message, "In-Reply-To", problems) or "").split()[:1],
        *(_header(message, "Message-ID", problems) or "").split()[:1],
    ]
    if not candidates:
        return None
    return hashlib.sha256(candidates[0].encode("utf-8", "replace")).hexdigest()[:24]


def read_content(raw: bytes) -> MessageContent:
    problems: list[str] = []
    message = parse(raw)
    text, html = _bodies(message, problems)
    return MessageContent(
        text=text,
        html=html,
        attachments=tuple(_attachments(message, problems)),
        in_reply_to=_header(message, "In-Reply-To", problems),
        references=_header(message, "References", problems),
    )


def attachment_content(raw: bytes, index: int) -> AttachmentContent | None:
    """The decoded attachment at `index` (as numbered by read_content), or None."""
    message = parse(raw)
    try:
        parts = list(message.iter_attachments()) if message.is_multipart() else []
        if not 0 <= index < len(parts):
            return None
        part = parts[index]
        return AttachmentContent(part.get_filename(), part.get_content_type(), _part_bytes(part))
    except _PARSE_ERRORS:
        return None


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
        value = message.get(name)
        return None if value is None else str(value)
    except _PARSE_ERRORS:
        problems.append(f"Unreadable{name.replace('-', '')}")
        return None


def _addresses(message: Message, name: str, problems: list[str]) -> tuple[str, ...]:
    try:
        header = message.get(name)
        if header is None:
            return ()
        addresses = getattr(header, "addresses", None)
        if addresses is None:
            return (str(header),)
        return tuple(str(address) for address in addresses)
    except _PARSE_ERRORS:
        problems.append(f"Unreadable{name}")
        return ()


def _bodies(message: EmailMessage, problems: list[str]) -> tuple[str | None, str | None]:
    text = html = None
    for subtype in ("plain", "html"):
        try:
            part = message.get_body(preferencelist=(subtype,))
            if part is None:
                continue
            content = part.get_content()
        except _PARSE_ERRORS:
            problems.append(f"Unreadable{subtype.title()}Body")
            continue
        if not isinstance(content, str):
            continue
        if subtype == "plain":
            text = content
        else:
            html = content
    return text, html


def _attachments(message: EmailMessage, problems: list[str]) -> list[Attachment]:
    found: list[Attachment] = []
    try:
        parts = list(message.iter_attachments()) if message.is_multipart() else []
    except _PARSE_ERRORS:
        problems.append("UnreadableAttachments")
        return found
    for index, part in enumerate(parts):
        try:
            found.append(
                Attachment(
                    index=index,
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    size=len(_part_bytes(part)),
                )
            )
        except _PARSE_ERRORS:
            problems.append("UnreadableAttachment")
    return found
