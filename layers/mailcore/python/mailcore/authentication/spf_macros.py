"""SPF macros (RFC 7208 §7): a macro-string parsed once into pieces, then expanded for one
evaluation. Parsing is where syntax errors are found (§4.6: any of them anywhere in the
record is a permerror before anything is evaluated); expansion cannot fail.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import quote

# §7.1: "c", "r" and "t" are allowed only in an explanation string (the exp TXT record).
DOMAIN_LETTERS = frozenset("slodiphv")
EXPLANATION_LETTERS = DOMAIN_LETTERS | frozenset("crt")
DELIMITERS = frozenset(".-+,/_=")
# §7.3: a domain name in its presentation form is at most 253 characters.
MAX_NAME_LENGTH = 253


class SpfSyntaxError(ValueError):
    """The record breaks RFC 7208's grammar (§12): the evaluation's result is permerror."""


@dataclass(frozen=True)
class Macro:
    """%{letter digits r delimiters}, e.g. %{ir} or %{L2-}; an upper-case letter means the
    expansion is URL-escaped afterwards (§7.3)."""

    letter: str  # lower case
    keep: int = 0  # the number of right-hand parts kept, 0 = all
    reverse: bool = False
    delimiters: str = ""  # "" = "." (§7.3)
    escape: bool = False


Piece = str | Macro


@dataclass(frozen=True)
class MacroValues:
    """What the letters stand for in one evaluation (§7.2)."""

    sender: str  # s: local-part@domain, "postmaster" substituted for a missing local-part
    domain: str  # d: the current <domain>
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str = ""  # h
    receiver: str = ""  # r
    validated: str = "unknown"  # p: filled in by the evaluator only when a piece asks for it

    def of(self, letter: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        if letter == "s":
            return self.sender
        if letter == "l":
            return local
        if letter == "o":
            return sender_domain
        if letter == "d":
            return self.domain
        if letter == "i":
            return _dotted(self.ip)
        if letter == "p":
            return self.validated
        if letter == "v":
            return "in-addr" if self.ip.version == 4 else "ip6"
        if letter == "h":
            return self.helo
        if letter == "c":
            return str(self.ip)
        if letter == "r":
            return self.receiver or "unknown"
        return str(int(time.time()))  # "t"


def _dotted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """%{i}: IPv4 dotted-quad; IPv6 as 32 dot-separated nibbles (§7.3)."""
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def parse_macro_string(text: str, letters: frozenset[str] = DOMAIN_LETTERS,
                       allow_space: bool = False) -> tuple[Piece, ...]:
    """macro-string (§7.1), or explain-string when `allow_space`. Raises SpfSyntaxError."""
    pieces: list[Piece] = []
    literal: list[str] = []
    position = 0
    while position < len(text):
        character = text[position]
        if character != "%":
            if not (0x21 <= ord(character) <= 0x7E or (allow_space and character == " ")):
                raise SpfSyntaxError(f"character {character!r} in {text!r}")
            literal.append(character)
            position += 1
            continue
        following = text[position + 1:position + 2]
        if following in ("%", "_", "-"):
            literal.append({"%": "%", "_": " ", "-": "%20"}[following])
            position += 2
            continue
        if following != "{":
            raise SpfSyntaxError(f"a lone % in {text!r}")
        end = text.find("}", position)
        if end < 0:
            raise SpfSyntaxError(f"an unclosed %{{ in {text!r}")
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(_macro(text[position + 2:end], letters))
        position = end + 1
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def _macro(body: str, letters: frozenset[str]) -> Macro:
    """The inside of %{...}: macro-letter transformers *delimiter (§7.1)."""
    if not body or body[0].lower() not in letters:
        raise SpfSyntaxError(f"macro %{{{body}}}")
    letter, rest = body[0], body[1:]
    digits = ""
    while rest[:1].isdigit() and rest[:1].isascii():
        digits, rest = digits + rest[0], rest[1:]
    reverse = rest[:1] in ("r", "R")
    if reverse:
        rest = rest[1:]
    if any(character not in DELIMITERS for character in rest):
        raise SpfSyntaxError(f"macro %{{{body}}}")
    if digits and int(digits) == 0:  # §7.3: "If a DIGIT is specified, the value MUST be nonzero"
        raise SpfSyntaxError(f"macro %{{{body}}} keeps zero parts")
    return Macro(letter.lower(), int(digits) if digits else 0, reverse, rest,
                 escape=letter.isupper())


def needs_validated_name(pieces: tuple[Piece, ...]) -> bool:
    return any(isinstance(piece, Macro) and piece.letter == "p" for piece in pieces)


def expand(pieces: tuple[Piece, ...], values: MacroValues) -> str:
    return "".join(piece if isinstance(piece, str) else _expand_macro(piece, values)
                   for piece in pieces)


def _expand_macro(macro: Macro, values: MacroValues) -> str:
    value = values.of(macro.letter)
    if macro.keep or macro.reverse or macro.delimiters:
        parts = _split(value, macro.delimiters or ".")
        if macro.reverse:
            parts.reverse()
        if macro.keep:
            parts = parts[-macro.keep:]
        value = ".".join(parts)
    # §7.3: upper-case macros are URL-escaped (RFC 3986's unreserved characters kept).
    return quote(value, safe="") if macro.escape else value


def _split(value: str, delimiters: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for character in value:
        if character in delimiters:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts


def trim_name(name: str) -> str:
    """§7.3: an expanded domain name over 253 characters loses labels from the left until it
    fits."""
    name = name.removesuffix(".")
    while len(name) > MAX_NAME_LENGTH and "." in name:
        name = name.split(".", 1)[1]
    return name
