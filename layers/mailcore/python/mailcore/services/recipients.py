"""Who may receive mail here: the RCPT TO decision."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailcore.domain.address import try_parse_address


@dataclass(frozen=True)
class HostedDomains:
    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> HostedDomains:
        return cls(frozenset(name.strip().lower().rstrip(".") for name in names if name.strip()))

    def hosts(self, domain: str) -> bool:
        return domain.lower() in self.names


def hosted_candidate(rcpt: str, domains: HostedDomains) -> str | None:
    """The canonical address when `rcpt` is a plain address in a hosted domain, else None
    (relaying denied). Pure: the account lookup is the caller's next step."""
    address = try_parse_address(rcpt)
    if address is None or not domains.hosts(address.domain):
        # Not a plain address (routing tricks included), or another domain: a hosted
        # domain anywhere in it still does not make it ours.
        return None
    return str(address)
