"""An SPF record read against RFC 7208's grammar (§12) before any of it is evaluated: a
syntax error anywhere makes the whole evaluation permerror (§4.6), so the record is parsed
whole, into directives and the two modifiers that mean something (redirect, exp).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mailcore.authentication.spf_macros import (
    EXPLANATION_LETTERS,
    MAX_NAME_LENGTH,
    Macro,
    Piece,
    SpfSyntaxError,
    parse_macro_string,
)
from mailcore.domain.verdict import Result

QUALIFIERS = {"+": Result.PASS, "-": Result.FAIL, "~": Result.SOFTFAIL, "?": Result.NEUTRAL}
MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# §4.6.4: the terms that query DNS when evaluated, ten at most in one evaluation.
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9._-]*)=(.*)", re.DOTALL)
_MECHANISM = re.compile(r"([+?~-]?)([A-Za-z][A-Za-z0-9]*)(.*)", re.DOTALL)
# dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]; the leftmost match that
# reaches the end is the whole suffix, since a domain-spec cannot end in "/digits".
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?\Z")
# §7.1 toplabel: alphanumeric with at least one letter, or with inner hyphens.
_TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z")
_NAME_CHARACTERS = re.compile(r"[\x21-\x7e]+")
_NOT_IN_A_NAME = frozenset("[]@")


@dataclass(frozen=True)
class Directive:
    text: str  # the term as published, for the verdict's reason
    qualifier: Result
    mechanism: str  # lower case, one of MECHANISMS
    domain_spec: tuple[Piece, ...] | None = None  # None: the current <domain>
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4, ip6
    cidr4: int = 32
    cidr6: int = 128


@dataclass(frozen=True)
class Record:
    directives: tuple[Directive, ...]
    redirect: tuple[Piece, ...] | None = None
    explanation: tuple[Piece, ...] | None = None

    @property
    def has_all(self) -> bool:
        """§5.1: with an "all" anywhere in the record, redirect is ignored."""
        return any(directive.mechanism == "all" for directive in self.directives)


def is_spf_record(text: str) -> bool:
    """§4.5: exactly "v=spf1" followed by a space or the end (ABNF strings ignore case)."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


def parse_record(text: str) -> Record:
    """The terms after "v=spf1", separated by spaces (§4.6.1). Raises SpfSyntaxError."""
    directives: list[Directive] = []
    modifiers: dict[str, tuple[Piece, ...]] = {}
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier is None:
            directives.append(_directive(term))
            continue
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            if name in modifiers:  # §6: each at most once
                raise SpfSyntaxError(f"a second {name}=")
            modifiers[name] = domain_spec(value)
        else:
            # §6: unknown modifiers are ignored, but must still be well-formed macro-strings.
            parse_macro_string(value, EXPLANATION_LETTERS)
    return Record(tuple(directives), modifiers.get("redirect"), modifiers.get("exp"))


def _directive(term: str) -> Directive:
    match = _MECHANISM.fullmatch(term)
    if match is None:
        raise SpfSyntaxError(f"term {term!r}")
    sign, name, rest = match.group(1), match.group(2).lower(), match.group(3)
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {name!r}")
    qualifier = QUALIFIERS[sign or "+"]
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"term {term!r}")
        return Directive(term, qualifier, name)
    if name in ("ip4", "ip6"):
        return Directive(term, qualifier, name, network=_network(name, rest, term))
    cidr4, cidr6 = 32, 128
    if name in ("a", "mx"):
        cidr = _DUAL_CIDR.search(rest)
        assert cidr is not None  # the pattern also matches the empty end
        cidr4 = _length(cidr.group(1), 32, term) if cidr.group(1) is not None else 32
        cidr6 = _length(cidr.group(2), 128, term) if cidr.group(2) is not None else 128
        rest = rest[:cidr.start()]
    if not rest:
        if name in ("include", "exists"):
            raise SpfSyntaxError(f"{name} without a domain")
        return Directive(term, qualifier, name, cidr4=cidr4, cidr6=cidr6)
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"term {term!r}")
    return Directive(term, qualifier, name, domain_spec(rest[1:]), cidr4=cidr4, cidr6=cidr6)


def _network(name: str, rest: str, term: str
             ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not rest.startswith(":") or "%" in rest:
        raise SpfSyntaxError(f"term {term!r}")
    address, slash, length = rest[1:].partition("/")
    maximum = 32 if name == "ip4" else 128
    prefix = _length(length, maximum, term) if slash else maximum
    try:
        parsed = (ipaddress.IPv4Address(address) if name == "ip4"
                  else ipaddress.IPv6Address(address))
    except ValueError as exc:
        raise SpfSyntaxError(f"term {term!r}") from exc
    return ipaddress.ip_network(f"{parsed}/{prefix}", strict=False)


def _length(text: str, maximum: int, term: str) -> int:
    """ip4-cidr-length / ip6-cidr-length: decimal without leading zeros, within range."""
    if not text.isascii() or not text.isdigit() or text != str(int(text)) \
            or int(text) > maximum:
        raise SpfSyntaxError(f"prefix length in {term!r}")
    return int(text)


def domain_spec(text: str) -> tuple[Piece, ...]:
    """domain-spec = macro-string domain-end (§7.1): it ends in a macro or in "." and a
    top label (with an optional final dot)."""
    pieces = parse_macro_string(text)
    if not pieces:
        raise SpfSyntaxError("an empty domain-spec")
    last = pieces[-1]
    if isinstance(last, Macro):
        return pieces
    before, dot, toplabel = last.removesuffix(".").rpartition(".")
    if not dot or not _TOPLABEL.match(toplabel) or (not before and len(pieces) == 1):
        raise SpfSyntaxError(f"domain-spec {text!r}")
    return pieces


def valid_domain(name: str) -> bool:
    """§4.3: a domain to check has two labels or more, none empty or over 63 characters,
    253 characters in all, and is a name rather than an address (an address literal, an
    IPv4 address: its last label all digits). DNS carries any other printable character,
    and a macro may put one there (include:%{l}._spf.example.com)."""
    name = name.removesuffix(".")
    labels = name.split(".")
    return (len(name) <= MAX_NAME_LENGTH and len(labels) >= 2
            and all(0 < len(label) <= 63 for label in labels)
            and _NAME_CHARACTERS.fullmatch(name) is not None
            and _NOT_IN_A_NAME.isdisjoint(name) and not labels[-1].isdigit())


def askable(name: str) -> bool:
    """A name DNS can be asked about (no empty label, none over 63 characters)."""
    labels = name.removesuffix(".").split(".")
    return bool(name) and all(0 < len(label) <= 63 for label in labels)
