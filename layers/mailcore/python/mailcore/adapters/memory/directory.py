"""The AccountDirectory port in memory (addresses and passwords), for tests and the edge's."""

from __future__ import annotations

import hmac
import secrets

from mailcore.errors import AuthenticationFailed
from mailcore.ports import AccountPage, Token


class InMemoryAccountDirectory:
    def __init__(self, accounts: dict[str, str] | None = None) -> None:
        self.accounts = dict(accounts or {})
        self.lookups = 0

    def is_account(self, address: str) -> bool:
        self.lookups += 1
        return address in self.accounts

    def list_accounts(self, limit: int, cursor: str | None) -> AccountPage:
        """In address order; the cursor is the last address of the page before."""
        after = cursor or ""
        following = sorted(address for address in self.accounts if address > after)
        page = tuple(following[:limit])
        return AccountPage(page, page[-1] if len(following) > limit else None)

    def create_account(self, address: str, password: str) -> None:
        self.accounts[address] = password

    def authenticate(self, address: str, password: str) -> Token:
        expected = self.accounts.get(address, "")
        if not (hmac.compare_digest(expected.encode(), password.encode()) and expected):
            raise AuthenticationFailed("wrong password or unknown account")
        return Token(token=secrets.token_urlsafe(16), expires_in=3600)
