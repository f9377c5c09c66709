"""Creating accounts (an administrator's act, from the CLI)."""

from __future__ import annotations

from typing import Protocol

from mailcore.domain.address import parse_address
from mailcore.errors import InvalidRequest


class AccountAdministration(Protocol):
    def create_account(self, address: str, password: str) -> None: ...


def add_account(address: str, password: str, hosted_domains: frozenset[str] | None,
                directory: AccountAdministration) -> str:
    """Create the account and return its canonical address."""
    canonical = parse_address(address)
    if hosted_domains is not None and canonical.domain not in hosted_domains:
        raise InvalidRequest(f"{canonical.domain} is not a hosted domain", "address")
    directory.create_account(str(canonical), password)
    return str(canonical)
