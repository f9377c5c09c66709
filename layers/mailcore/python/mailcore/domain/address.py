"""Mail addresses as the envelope carries them.

Parsing is deliberately strict: anything that could smuggle a second routing
decision (percent hack, bang path, quoted local part, source route, IP literal)
is not a plain `local@domain`, so it can never match a hosted account and is
refused instead of relayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailcore.errors import InvalidAddress

# RFC 5321 dot-atom without the characters that older MTAs treat as routing.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                     r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ROUTING_CHARACTERS = "!%"


@dataclass(frozen=True, order=True)
class Address:
    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str) -> Address:
    """Parse and canonicalise (lower case) a plain `local@domain` envelope address."""
    candidate = text.strip()
    if candidate.startswith("<") and candidate.endswith(">"):
        candidate = candidate[1:-1]
    if len(candidate) > 254 or candidate.count("@") != 1:
        raise InvalidAddress(f"not a plain address: {text!r}")
    local, domain = candidate.split("@")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise InvalidAddress(f"unsupported local part: {text!r}")
    if any(char in local for char in _ROUTING_CHARACTERS):
        raise InvalidAddress(f"routing characters in local part: {text!r}")
    if not _DOMAIN.match(domain):
        raise InvalidAddress(f"unsupported domain: {text!r}")
    return Address(local.lower(), domain.lower())


def try_parse_address(text: str) -> Address | None:
    try:
        return parse_address(text)
    except InvalidAddress:
        return None
