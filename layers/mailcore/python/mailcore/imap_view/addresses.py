"""Addresses (RFC 5322 3.4) for ENVELOPE. A scan in one pass: tokens are found by one
regular expression with no ambiguity (nothing to backtrack into), comments by counting
parentheses (no recursion, so 3,000 "(" cost 3,000 steps), and groups give RFC 3501's
markers: (NIL NIL "name" NIL) before their members, (NIL NIL NIL NIL) after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailcore.imap_view.fields import decoded_header
from mailcore.imap_view.strings import COMMENT_STOP, QUOTED_PAIR, human_nstring, nstring

_TOKEN = re.compile(rb"""
    (?P<space>[ \t\r\n]+)
  | (?P<atom>[^ \t\r\n()<>@,;:\\".\[\]]+)
  | (?P<quoted>"(?:[^"\\]|\\.)*+"?)
  | (?P<literal>\[(?:[^\[\]\\]|\\.)*+\]?)
  | (?P<comment>\()
  | (?P<special>.)
""", re.X | re.S)


@dataclass(frozen=True)
class Address:
    """One ENVELOPE address: a mailbox, or a group's start (only `mailbox`, the group's
    name) or end (all None)."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def __bytes__(self) -> bytes:
        return b"(" + b" ".join([human_nstring(self.name), *(nstring(value) for value in (
            self.route, self.mailbox, self.host))]) + b")"

    def __str__(self) -> str:
        address = b"@".join(value for value in (self.mailbox, self.host) if value)
        text = (b"%s <%s>" % (self.name, address)) if self.name else address
        return decoded_header(text)


def _tokens(value: bytes) -> Iterator[tuple[str, bytes, bool]]:
    """(kind, text, whether space or a comment came before) for each token."""
    position, length, spaced = 0, len(value), False
    while position < length:
        match = _TOKEN.match(value, position)
        assert match is not None and match.lastgroup is not None  # (?P<special>.) takes any
        kind = match.lastgroup
        if kind == "space":
            spaced, position = True, match.end()
            continue
        if kind == "comment":
            depth, cursor = 1, position + 1
            while depth and cursor < length:
                stop = COMMENT_STOP.search(value, cursor)
                if stop is None:
                    cursor = length
                    break
                character = value[stop.start()]
                cursor = stop.end() + (1 if character == 0x5C else 0)
                depth += 0 if character == 0x5C else 1 if character == 0x28 else -1
            yield kind, value[position + 1:cursor - 1 if not depth else cursor], spaced
            spaced, position = True, cursor
            continue
        text = match.group()
        if kind == "quoted":
            text = QUOTED_PAIR.sub(rb"\1", text[1:-1] if len(text) > 1
                                   and text.endswith(b'"') else text[1:])
        yield kind, text, spaced
        spaced, position = False, match.end()


def addresses(value: bytes) -> list[Address]:
    """An address list as ENVELOPE lists it, whatever the field holds."""
    listed: list[Address] = []
    words: list[tuple[str, bytes, bool]] = []
    inside: list[tuple[str, bytes, bool]] = []
    comment: bytes | None = None
    in_angle = angled = in_group = False

    def finish() -> None:
        nonlocal words, inside, comment, angled
        found = (_mailbox(inside, _phrase(words) or comment) if angled
                 else _mailbox(words, comment) if words else None)
        # Never all NIL: that is a group's end marker.
        if found is not None and (found.mailbox or found.host or found.name):
            listed.append(found)
        words, inside, comment, angled = [], [], None, False

    for token in _tokens(value):
        kind, text, _ = token
        if in_angle:
            if kind == "special" and text == b">":
                in_angle = False
            elif kind != "comment":
                inside.append(token)
            continue
        if kind == "comment":
            # A comment after an address names it (Dovecot); one before it does not.
            if words:
                comment = text.strip() or comment
        elif kind == "special" and text == b",":
            finish()
        elif kind == "special" and text == b";":
            finish()
            if in_group:
                listed.append(Address(None, None, None, None))
                in_group = False
        elif kind == "special" and text == b":" and not in_group and not angled:
            listed.append(Address(None, None, _phrase(words) or b"", None))
            words, comment, in_group = [], None, True
        elif kind == "special" and text == b"<" and not angled:
            in_angle = angled = True
        else:
            words.append(token)
    finish()
    if in_group:
        listed.append(Address(None, None, None, None))
    return listed


def _phrase(words: list[tuple[str, bytes, bool]]) -> bytes | None:
    pieces: list[bytes] = []
    for _kind, text, spaced in words:
        if pieces and spaced:
            pieces.append(b" ")
        pieces.append(text)
    return b"".join(pieces) or None


def _mailbox(tokens: list[tuple[str, bytes, bool]], name: bytes | None) -> Address:
    route = None
    if tokens and tokens[0][1] == b"@" and tokens[0][0] == "special":
        colon = next((index for index, (kind, text, _) in enumerate(tokens)
                      if kind == "special" and text == b":"), None)
        if colon is not None:
            route = b"".join(text for _, text, _ in tokens[:colon])
            tokens = tokens[colon + 1:]
    at = max((index for index, (kind, text, _) in enumerate(tokens)
              if kind == "special" and text == b"@"), default=None)
    local = tokens if at is None else tokens[:at]
    domain = [] if at is None else tokens[at + 1:]
    mailbox = b"".join(_addr_text(token) for token in local)
    host = b"".join(text for _, text, _ in domain)
    return Address(name, route, mailbox or None, host or None)


def _addr_text(token: tuple[str, bytes, bool]) -> bytes:
    return token[1]  # a quoted local part without its quotes, as Dovecot gives it
