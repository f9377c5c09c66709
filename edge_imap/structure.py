"""ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2) from a message's raw bytes.

pymap builds both from Python's parsed email objects, and what comes out is not what
RFC 3501 asks (checked against Dovecot, tests/functional/test_imap_dovecot.py): the
envelope's date in INTERNALDATE form and its subject decoded, part sizes counting the
part's header, a body that keeps the line break before the next boundary, parameters
decoded from RFC 2231 into 8-bit text, and a disposition written as one string where the
grammar wants "(" type params ")", which a client's parser rejects. Here both are read
from the bytes themselves: strings as they stand in the header (encoded words stay
encoded; decoding is the client's), each part's body ending where RFC 2046 ends it.
"""

from __future__ import annotations

import binascii
import quopri
import re
from dataclasses import dataclass
from email.utils import getaddresses

NIL = b"NIL"
# Bounds as filing's parser has (mailcore/domain/message.py): deeper nesting or more parts
# are shown as one opaque part, not followed (hostile mail must not exhaust the stack).
MAX_DEPTH = 50
MAX_PARTS = 1000
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_PARAMETER = re.compile(rb'\s*;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)', re.S)


@dataclass(frozen=True)
class Part:
    headers: list[tuple[bytes, bytes]]  # (lower-case name, unfolded value) in order
    body: bytes
    # The line break between this part and the next boundary: the boundary's (RFC 2046),
    # except that a multipart part's body runs to the end of its close-delimiter line, as
    # Dovecot reads the one line break both could claim.
    line_break: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


def split_message(raw: bytes) -> Part:
    if raw.startswith((b"\r\n", b"\n")):
        return Part([], raw[2 if raw.startswith(b"\r\n") else 1:])
    blank = _BLANK_LINE.search(raw)
    head, body = (raw[:blank.start()], raw[blank.end():]) if blank else (raw, b"")
    headers: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and headers:
            # RFC 5322 2.2.3: unfolding removes the line break only.
            name, value = headers[-1]
            headers[-1] = (name, (value + line).rstrip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
    return Part(headers, body)


def _string(value: bytes | None) -> bytes:
    """An nstring: quoted when it can be, a literal when it holds 8-bit or line breaks."""
    if value is None:
        return NIL
    if any(byte > 0x7E or byte < 0x20 for byte in value):
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _list(items: list[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")" if items else NIL


def _content_type(part: Part, default: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    value = part.header(b"content-type") or default
    kind, _, rest = value.partition(b";")
    major, _, minor = kind.strip().partition(b"/")
    if not major or not minor:
        major, minor, rest = default.split(b"/")[0], default.split(b"/")[1], b""
    return major.lower(), minor.lower(), _parameters(b";" + rest)


def _parameters(text: bytes) -> list[tuple[bytes, bytes]]:
    found = []
    for name, value in _PARAMETER.findall(text):
        if value.startswith(b'"'):
            value = re.sub(rb"\\(.)", rb"\1", value[1:-1])
        found.append((name.lower(), value))
    return found


def _parameter_list(parameters: list[tuple[bytes, bytes]]) -> bytes:
    return _list([_string(name) + b" " + _string(value) for name, value in parameters])


def _disposition(part: Part) -> bytes:
    value = part.header(b"content-disposition")
    if value is None:
        return NIL
    kind, _, rest = value.partition(b";")
    return b"(" + _string(kind.strip().lower()) + b" " + _parameter_list(
        _parameters(b";" + rest)) + b")"


def _children(body: bytes, boundary: bytes) -> list[tuple[bytes, bytes]]:
    """The bodies between boundary delimiters, each with the line break before the next
    delimiter (RFC 2046 5.1.1: it belongs to the delimiter, not to the part before)."""
    delimiter = b"--" + boundary
    starts = [match.start() for match in re.finditer(rb"(?:^|(?<=\n))" + re.escape(delimiter),
                                                     body)]
    parts = []
    for index, start in enumerate(starts[:MAX_PARTS + 1]):
        after = start + len(delimiter)
        if body[after:after + 2] == b"--":
            break
        line_end = body.find(b"\n", after)
        if line_end < 0:
            break
        end = starts[index + 1] if index + 1 < len(starts) else len(body)
        line_break = b""
        if index + 1 < len(starts):
            line_break = b"\r\n" if body[end - 2:end] == b"\r\n" else b"\n"
            end -= len(line_break)
        parts.append((body[line_end + 1:max(end, line_end + 1)], line_break))
    return parts


def _opaque(part: Part, extended: bool) -> bytes:
    fields = [b'"application" "octet-stream" NIL NIL NIL', _string(
        part.header(b"content-transfer-encoding") or b"7bit"), b"%d" % len(part.body)]
    if extended:
        fields.append(b"NIL NIL NIL NIL")
    return b"(" + b" ".join(fields) + b")"


def envelope(part: Part) -> bytes:
    def addresses(name: bytes) -> bytes:
        value = part.header(name)
        if value is None:
            return NIL
        listed = []
        for personal, address in getaddresses([value.decode("latin-1")]):
            if not personal and not address:
                continue
            mailbox, at, host = address.rpartition("@")
            if not at:
                mailbox, host = address, ""
            listed.append(b"(" + b" ".join([
                _string(personal.encode("latin-1")) if personal else NIL, NIL,
                _string(mailbox.encode("latin-1")) if mailbox else NIL,
                _string(host.encode("latin-1")) if host else NIL]) + b")")
        return b"(" + b"".join(listed) + b")" if listed else NIL

    sender = b"sender" if part.header(b"sender") is not None else b"from"
    reply_to = b"reply-to" if part.header(b"reply-to") is not None else b"from"
    return b"(" + b" ".join([
        _string(part.header(b"date")), _string(part.header(b"subject")),
        addresses(b"from"), addresses(sender), addresses(reply_to), addresses(b"to"),
        addresses(b"cc"), addresses(b"bcc"), _string(part.header(b"in-reply-to")),
        _string(part.header(b"message-id"))]) + b")"


def body_structure(part: Part, extended: bool = True,
                   default: bytes = b"text/plain", depth: int = 0) -> bytes:
    if depth > MAX_DEPTH:
        return _opaque(part, extended)
    major, minor, parameters = _content_type(part, default)
    if major == b"multipart":
        boundary = dict(parameters).get(b"boundary")
        children = _children(part.body, boundary) if boundary else []
        child_default = b"message/rfc822" if minor == b"digest" else b"text/plain"
        inner = b"".join(body_structure(split_message(child), extended, child_default,
                                        depth + 1)
                         for child, _ in children[:MAX_PARTS]) or body_structure(
            Part([], b""), extended)
        fields = [inner, _string(minor)]
        if extended:
            fields += [_parameter_list(parameters), _disposition(part),
                       _string(part.header(b"content-language")),
                       _string(part.header(b"content-location"))]
        return b"(" + b" ".join(fields) + b")"
    if major == b"text" and b"charset" not in dict(parameters):
        parameters = [(b"charset", b"us-ascii"), *parameters]  # RFC 2045 5.2
    fields = [_string(major), _string(minor), _parameter_list(parameters),
              _string(part.header(b"content-id")),
              _string(part.header(b"content-description")),
              _string(part.header(b"content-transfer-encoding") or b"7bit"),
              b"%d" % len(part.body)]
    lines = b"%d" % part.body.count(b"\n")
    if major == b"message" and minor == b"rfc822":
        enclosed = split_message(part.body)
        fields += [envelope(enclosed), body_structure(enclosed, extended, depth=depth + 1),
                   lines]
    elif major == b"text":
        fields.append(lines)
    if extended:
        fields += [_string(part.header(b"content-md5")), _disposition(part),
                   _string(part.header(b"content-language")),
                   _string(part.header(b"content-location"))]
    return b"(" + b" ".join(fields) + b")"


def section(message: Part, numbers: list[int]) -> Part | None:
    """The part a section number names (RFC 3501 6.4.5): part n of a multipart, part 1 of
    anything else (the part itself, as Dovecot reads it at any depth, except that the body
    of a message that is not multipart has no parts of its own), and the enclosed message's
    parts below a message/rfc822 part. None when there is no such part."""
    current, default = message, b"text/plain"
    bare_body = False  # part 1 of a message that is not multipart: not a MIME part
    for depth, number in enumerate(numbers):
        if bare_body:
            return None
        major, minor, parameters = _content_type(current, default)
        at_message = depth == 0
        if depth and major == b"message" and minor == b"rfc822":
            current = split_message(current.body)
            major, minor, parameters = _content_type(current, b"text/plain")
            at_message = True
        if major == b"multipart":
            boundary = dict(parameters).get(b"boundary")
            children = _children(current.body, boundary) if boundary else []
            if not 1 <= number <= len(children):
                return None
            default = b"message/rfc822" if minor == b"digest" else b"text/plain"
            body, line_break = children[number - 1]
            current = split_message(body)
            current = Part(current.headers, current.body, line_break)
        elif number != 1:
            return None
        else:
            bare_body = at_message
    if _content_type(current, default)[0] == b"multipart":
        return Part(current.headers, current.body + current.line_break)
    return current


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
