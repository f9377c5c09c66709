"""How ENVELOPE and BODYSTRUCTURE write strings (RFC 3501 9: nstring, a parenthesised
list), and the lexical pieces the header fields they read share: quoted pairs and comments
(RFC 5322 3.2)."""

from __future__ import annotations

import re

NIL = b"NIL"
QUOTED_PAIR = re.compile(rb"\\(.)", re.S)
COMMENT_STOP = re.compile(rb"[()\\]")


def nstring(value: bytes | None) -> bytes:
    """An nstring: quoted when it can be, a literal when it holds 8-bit or line breaks."""
    if value is None:
        return NIL
    if any(byte > 0x7E or byte < 0x20 for byte in value):
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def human_nstring(value: bytes | None) -> bytes:
    """An ENVELOPE subject or name as Dovecot writes text for people: tabs and line breaks
    as spaces, and a literal rather than a quoted string with escapes."""
    if value is None:
        return NIL
    if any(byte > 0x7E or byte < 0x20 or byte in b'"\\' for byte in value):
        value = value.translate(_SPACING)
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value + b'"'


_SPACING = bytes.maketrans(b"\t\r\n", b"   ")


def paren_list(items: list[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")" if items else NIL


def without_comments(text: bytes) -> bytes:
    """`text` with its (comments) left out, nested ones too, counted, never recursed."""
    if b"(" not in text:
        return text
    kept, depth, position = [], 0, 0
    for stop in COMMENT_STOP.finditer(text):
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
