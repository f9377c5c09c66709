"""The part a section number names (RFC 3501 6.4.5) and what BODY[section], its HEADER,
HEADER.FIELDS and TEXT, and BINARY[section] (RFC 3516) answer."""

from __future__ import annotations

import binascii
import quopri
import re

from mailcore.imap_view.parts import Part


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
