"""What SEARCH reads of one message (the package's text says how it reads it): its parts
with their headers, bodies decoded from their transfer encodings and charsets, header
text with its encoded words decoded, and address fields written as Dovecot searches them.
Each piece is bounded and linear in the message's size."""

from __future__ import annotations

import binascii
import quopri
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_tz
from functools import cached_property

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS

EPOCH = date(1970, 1, 1)
# A part's header as SEARCH reads it: real mail has some dozens of fields in some KiB;
# past these the rest is not searched (a 20 MiB header of one-letter fields would be
# millions of them).
MAX_HEAD_BYTES = 1024 * 1024
MAX_HEAD_FIELDS = 1000
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BOUNDARY = re.compile(rb'(?i)boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))')
_CHARSET = re.compile(rb'(?i)charset\s*=\s*"?([^";\s]+)')
_ADDRESS_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|\\.|[()<>,:;]|\s+|[^\s"()<>,:;\\]+', re.S)
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]+")


def fold(text: str) -> str:
    """Text as compared: compatibility decomposition, then lower case (RFC 5051's
    i;unicode-casemap, as Dovecot compares; "ß" stays "ß")."""
    return unicodedata.normalize("NFKD", text).lower()


@dataclass
class Part:
    headers: list[tuple[bytes, bytes]]  # (lower-case name, unfolded value) in order
    body: bytes
    text: bool  # a text/* or message/* body, which BODY searches


def read_head(raw: bytes, start: int = 0, end: int | None = None
              ) -> tuple[list[tuple[bytes, bytes]], int]:
    """The header fields of the part in raw[start:end], and where its body starts."""
    end = len(raw) if end is None else end
    if raw.startswith(b"\n", start) or raw.startswith(b"\r\n", start):
        return [], start + (1 if raw[start:start + 1] == b"\n" else 2)
    blank = _BLANK_LINE.search(raw, start, end)
    head_end, body_start = (blank.start(), blank.end()) if blank else (end, end)
    headers: list[tuple[bytes, bytes]] = []
    # What SEARCH reads of one header is bounded, whatever a sender wrote there.
    lines = _LINE_BREAK.split(raw[start:min(head_end, start + MAX_HEAD_BYTES)],
                              MAX_HEAD_FIELDS)[:MAX_HEAD_FIELDS]
    for line in lines:
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + line)  # RFC 5322 2.2.3: the line break goes
        elif b":" in line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value))
    return [(name, value.strip()) for name, value in headers], body_start


def _content_type(headers: list[tuple[bytes, bytes]], default: bytes) -> tuple[bytes, bytes]:
    value = next((value for name, value in headers if name == b"content-type"), default)
    kind = value.partition(b";")[0].strip().lower()
    return (kind, value) if b"/" in kind else (default, b"")


def parts(raw: bytes) -> Iterator[Part]:
    """The message and every part inside it, in order, each with its headers; a leaf's
    body is copied once, a multipart's is not (so at most the message's size in all).
    Nesting deeper than MAX_NESTING, or parts past MAX_PARTS, are read as one body."""
    pending = [(0, len(raw), b"text/plain", 0)]
    seen = 0
    while pending and seen <= MAX_PARTS:
        start, end, default, depth = pending.pop()
        seen += 1
        headers, body_start = read_head(raw, start, end)
        kind, content_type = _content_type(headers, default)
        boundary = _boundary(content_type) if kind.startswith(b"multipart/") else None
        if depth < MAX_NESTING and boundary:
            yield Part(headers, b"", False)
            child_default = b"message/rfc822" if kind == b"multipart/digest" else b"text/plain"
            children = _children(raw, body_start, end, boundary)
            pending += [(child_start, child_end, child_default, depth + 1)
                        for child_start, child_end in reversed(children)]
        elif depth < MAX_NESTING and kind == b"message/rfc822":
            yield Part(headers, b"", False)
            pending.append((body_start, end, b"text/plain", depth + 1))
        else:
            # A multipart that could not be split (too deep, no boundary) is searched as
            # the text it holds.
            text = kind.startswith((b"text/", b"message/", b"multipart/"))
            yield Part(headers, raw[body_start:end], text)


def _boundary(content_type: bytes) -> bytes | None:
    """The multipart's boundary; None without one, and for `boundary=""` (RFC 2046 5.1.1:
    1 to 70 characters), which splits nothing."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        return None
    return found.group(1) if found.group(1) is not None else found.group(2)


def _children(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Where each part between the boundary delimiters starts and ends (RFC 2046 5.1.1:
    the line break before a delimiter belongs to the delimiter)."""
    # The boundary, then only white space to the end of the line: "--b1" is not "--b10".
    delimiter = re.compile(rb"(?:^|(?<=\n))--" + re.escape(boundary)
                           + rb"(--)?[ \t]*\r?(?:\n|$)", re.M)
    children: list[tuple[int, int]] = []
    part_start: int | None = None
    for match in delimiter.finditer(raw, start, end):
        if part_start is not None:
            part_end = match.start()
            part_end -= 2 if raw[part_end - 2:part_end] == b"\r\n" else 1
            children.append((part_start, max(part_start, part_end)))
        if match.group(1) or len(children) >= MAX_PARTS:
            return children
        part_start = match.end()
    if part_start is not None:
        children.append((part_start, end))
    return children


def decode_words(text: str) -> str:
    """A header value as text, its encoded words decoded (RFC 2047), the space between
    two of them dropped; a word in an unknown charset is left out, as Dovecot does."""
    pieces: list[str] = []
    position, after_word = 0, False
    for word in _ENCODED_WORD.finditer(text):
        between = text[position:word.start()]
        if not (after_word and not between.strip()):
            pieces.append(between)
        pieces.append(_decoded_word(word))
        position, after_word = word.end(), True
    pieces.append(text[position:])
    return "".join(pieces)


def _decoded_word(word: re.Match[str]) -> str:
    charset = word.group(1).partition("*")[0]  # RFC 2231 5: charset*language
    data = word.group(3).encode("ascii", "replace")
    octets = (_base64(data) if word.group(2) in "bB"
              else binascii.a2b_qp(data, header=True))
    return _text(octets, charset, unknown="")


def _base64(data: bytes) -> bytes:
    """Lenient, as readers are: characters outside the alphabet skipped, padding added."""
    letters = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(letters) % 4 == 1:
        letters = letters[:-1]  # a lone last character carries no whole byte
    return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))


def _text(octets: bytes, charset: str, unknown: str | None = None) -> str:
    """`octets` in `charset`; in UTF-8 when the charset is unknown and `unknown` is None."""
    try:
        return octets.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return octets.decode("utf-8", "replace") if unknown is None else unknown


def body_text(part: Part) -> str:
    """A part's body without its transfer encoding, in its charset."""
    value = next((value for name, value in part.headers
                  if name == b"content-transfer-encoding"), b"").strip().lower()
    body = part.body
    if value == b"base64":
        body = _base64(body)
    elif value == b"quoted-printable":
        body = quopri.decodestring(body)
    content_type = next((value for name, value in part.headers if name == b"content-type"), b"")
    charset = _CHARSET.search(content_type)
    return _text(body, charset.group(1).decode("ascii", "replace") if charset else "utf-8")


def addresses(value: str) -> str:
    """An address field rewritten as Dovecot searches it: `"Name" <local@domain>` or
    `<local@domain>` for each address, `group: ...;` for a group, comments left out;
    what cannot be read as an address is left out too. One pass over the tokens: no
    recursion, however the parentheses nest."""
    written: list[str] = []
    members: list[str] | None = None  # the addresses of an open group
    group = ""
    phrase: list[str] = []
    angle: list[str] | None = None
    comments = 0

    def finish() -> None:
        nonlocal angle
        spec, name = ("".join(angle), " ".join(phrase)) if angle is not None else (
            "".join(phrase), "")
        if spec:
            address = (_quoted_name(name) + " " if name else "") + "<" + spec + ">"
            (written if members is None else members).append(address)
        phrase.clear()
        angle = None

    def close_group() -> None:
        nonlocal members
        if members is not None:
            written.append(f"{group}: {', '.join(members)};" if members else f"{group}:;")
            members = None

    for piece in _ADDRESS_TOKEN.findall(value):
        if piece == "(":
            comments += 1
        elif comments:
            comments -= piece == ")"
        elif piece.isspace() or piece == ")":
            continue
        elif angle is not None and piece != ">":
            angle.append(piece)
        elif piece == "<":
            angle = []
        elif piece in (">", ","):
            finish()
        elif piece == ":" and members is None:
            group, members = _quoted_name(" ".join(phrase)) or '""', []
            phrase.clear()
        elif piece == ";":
            finish()
            close_group()
        else:
            phrase.append(_unquoted(piece))
    finish()
    close_group()
    return ", ".join(written)


def _unquoted(word: str) -> str:
    if word.startswith('"'):
        return re.sub(r"\\(.)", r"\1", word[1:-1] if word.endswith('"') else word[1:])
    return word


def _quoted_name(name: str) -> str:
    if "=?" in name or _ATEXT.fullmatch(name):
        return name  # encoded words are decoded afterwards, not quoted (RFC 2047 5)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def utf8_text(value: bytes) -> str:
    """Header bytes as text: 8-bit as UTF-8 (RFC 6532), what is not UTF-8 replaced."""
    return value.decode("utf-8", "replace")


def sent_day(dates: list[bytes]) -> date:
    """The day the first Date field names, its zone disregarded (RFC 3501 6.4.4); a
    message without a readable one was sent on 1 January 1970, as in Dovecot."""
    parsed = parsedate_tz(dates[0].decode("ascii", "replace")) if dates else None
    try:
        return date(*parsed[:3]) if parsed else EPOCH
    except ValueError:  # 31 February
        return EPOCH


class MessageText:
    """What SEARCH reads of one message, each piece computed once when first asked for."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @cached_property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return read_head(self.raw)[0]

    def fields(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]

    @cached_property
    def sent_on(self) -> date:
        return sent_day(self.fields(b"date"))

    @cached_property
    def parts(self) -> list[Part]:
        return list(parts(self.raw))

    @cached_property
    def bodies(self) -> list[str]:
        return [fold(body_text(part)) for part in self.parts if part.text]

    @cached_property
    def header_lines(self) -> list[str]:
        return [fold(name.decode("latin-1") + ": " + decode_words(utf8_text(value)))
                for part in self.parts for name, value in part.headers]
