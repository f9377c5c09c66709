"""Writing a new message as a user agent does: a correct RFC 5322 / MIME message.

From is always the author's own address; non-ASCII headers become encoded words;
a reply carries In-Reply-To and References so that every client threads it; a
forward carries the original, unchanged, as a message/rfc822 attachment.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from typing import Any, Generic, TypeVar

from mailcore.domain.address import try_parse_address
from mailcore.errors import InvalidRequest, TooLarge

# Generated parts are 7-bit clean (quoted-printable or base64) so that any relay takes them.
_POLICY = policy.default.clone(linesep="\r\n", cte_type="7bit")
MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # the edge's SIZE: what we send we could also receive
MAX_RECIPIENTS = 100
_MAX_REFERENCES = 20
_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|fw)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    data: bytes


AttachmentT = TypeVar("AttachmentT")


@dataclass(frozen=True)
class Original:
    """The message replied to or forwarded, as the author's mailbox holds it."""

    message_id_header: str | None
    references: str | None
    subject: str
    raw: bytes


@dataclass(frozen=True)
class Composition(Generic[AttachmentT]):
    """A message as its author asks for it. Attachments are given as data by the time it
    is written (`compose`); a request may still name some by upload id."""

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str | None = None
    text: str = ""
    html: str | None = None
    attachments: tuple[AttachmentT, ...] = field(default_factory=tuple)

    def recipients(self) -> tuple[str, ...]:
        """The envelope's RCPT TO list: every address once, Bcc included."""
        found: dict[str, None] = {}
        for text in (*self.to, *self.cc, *self.bcc):
            found.setdefault(recipient_address(text).addr_spec.lower(), None)
        return tuple(found)


def is_one_line(text: str) -> bool:
    """Fit for a header: no control characters (tab aside) and no line or paragraph
    separators, all of which Python's email package (rightly) treats as line breaks."""
    return one_line(text) == text


def recipient_address(text: str, field_name: str = "to") -> HeaderAddress:
    """`bob@example.com` or `Bob <bob@example.com>`; the address itself must be plain."""
    found = email.utils.getaddresses([text])
    name, spec = found[0] if len(found) == 1 else ("", "")
    parsed = try_parse_address(spec) if spec else None
    if parsed is None or not is_one_line(text):
        raise InvalidRequest(f"not a valid address: {text!r}", field_name)
    return HeaderAddress(display_name=name, username=spec.rsplit("@", 1)[0],
                         domain=spec.rsplit("@", 1)[1])


def validate_recipients(composition: Composition[Any]) -> None:
    for field_name, values in (("to", composition.to), ("cc", composition.cc),
                               ("bcc", composition.bcc)):
        for index, value in enumerate(values):
            recipient_address(value, f"{field_name}[{index}]")
    if len(composition.recipients()) > MAX_RECIPIENTS:
        raise InvalidRequest(f"at most {MAX_RECIPIENTS} recipients", "to")


def message_id_header(message_id: str, author: str) -> str:
    """The Message-ID of mail we write: our id, at the author's domain."""
    return f"<{message_id}@{author.rsplit('@', 1)[-1]}>"


def one_line(text: str) -> str:
    """`text` fit for a header: what is_one_line refuses becomes a space. A received
    subject may decode (from encoded words) to CR, LF or NUL."""
    return "".join(" " if (unicodedata.category(char) in {"Cc", "Zl", "Zp"} and char != "\t")
                   else char for char in text)


def reply_subject(subject: str) -> str:
    subject = one_line(subject)
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def forward_subject(subject: str) -> str:
    subject = one_line(subject)
    return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}"


def compose(author: str, message_id: str, composition: Composition[AttachmentData],
            now: datetime, *,
            in_reply_to: Original | None = None, forward_of: Original | None = None,
            keep_bcc: bool = False) -> bytes:
    """The message's bytes. `keep_bcc` is for drafts only: sent mail never shows Bcc."""
    validate_recipients(composition)
    message = EmailMessage(policy=_POLICY)
    message["From"] = recipient_address(author, "from")
    for header, values in (("To", composition.to), ("Cc", composition.cc)):
        if values:
            message[header] = [recipient_address(value) for value in values]
    if keep_bcc and composition.bcc:
        message["Bcc"] = [recipient_address(value) for value in composition.bcc]
    message["Subject"] = _subject(composition.subject, in_reply_to, forward_of)
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = message_id_header(message_id, author)
    if in_reply_to is not None and in_reply_to.message_id_header:
        message["In-Reply-To"] = in_reply_to.message_id_header
        earlier = (in_reply_to.references or "").split()
        message["References"] = " ".join(
            [*earlier, in_reply_to.message_id_header][-_MAX_REFERENCES:])
    message["MIME-Version"] = "1.0"
    message.set_content(composition.text)
    if composition.html is not None:
        message.add_alternative(composition.html, subtype="html")
    for attachment in composition.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                               filename=attachment.filename)
    data = _with_forwarded(message, forward_of.raw) if forward_of else message.as_bytes()
    if len(data) > MAX_MESSAGE_BYTES:
        raise TooLarge(f"the message would exceed {MAX_MESSAGE_BYTES} bytes")
    return data


def sendable_draft(draft: bytes, message_id: str, author: str,
                   now: datetime) -> tuple[bytes, tuple[str, ...]]:
    """A draft (which we composed) made ready to send: fresh Date and Message-ID, Bcc
    taken out of the headers and kept for the envelope. Returns (message, recipients)."""
    message = email.message_from_bytes(draft, policy=_POLICY)
    headers = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    recipients = tuple(recipient_address(address.strip()).addr_spec.lower()
                       for _, address in email.utils.getaddresses(headers))
    del message["Bcc"]
    del message["Date"]
    del message["Message-ID"]
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = message_id_header(message_id, author)
    data = message.as_bytes()
    if len(data) > MAX_MESSAGE_BYTES:
        raise TooLarge(f"the message would exceed {MAX_MESSAGE_BYTES} bytes")
    return data, tuple(dict.fromkeys(recipients))


def _subject(subject: str | None, in_reply_to: Original | None,
             forward_of: Original | None) -> str:
    if subject is not None:
        return subject
    if in_reply_to is not None:
        return reply_subject(in_reply_to.subject)
    if forward_of is not None:
        return forward_subject(forward_of.subject)
    return ""


def _with_forwarded(message: EmailMessage, raw: bytes) -> bytes:
    """The message with the original attached byte for byte (no re-encoding, so its
    signatures survive); message/rfc822 allows only 7bit or 8bit as transfer encoding."""
    original = re.sub(rb"\r?\n", b"\r\n", raw)
    if not original.endswith(b"\r\n"):
        original += b"\r\n"
    message.make_mixed()
    for _ in range(5):
        placeholder = f"forwarded-{uuid.uuid4().hex}"
        part = EmailMessage(policy=_POLICY)
        part["Content-Type"] = "message/rfc822"
        part["Content-Disposition"] = 'attachment; filename="forwarded.eml"'
        part["Content-Transfer-Encoding"] = "7bit" if original.isascii() else "8bit"
        # A text payload is written out as it is; the placeholder then becomes the bytes.
        part.set_payload(placeholder)
        message.attach(part)
        data = message.as_bytes()
        boundary = message.get_boundary()
        if boundary and f"--{boundary}".encode() not in original:
            return data.replace(placeholder.encode(), original.removesuffix(b"\r\n"))
        payload = message.get_payload()
        assert isinstance(payload, list)
        payload.remove(part)
        message.set_boundary(f"=_{uuid.uuid4().hex}")
    raise InvalidRequest("the original cannot be attached", "forward_of")
