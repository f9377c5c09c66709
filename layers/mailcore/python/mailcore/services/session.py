"""Logging in: an address and password become a bearer token."""

from __future__ import annotations

from mailcore.domain.address import parse_address
from mailcore.errors import AuthenticationFailed, InvalidAddress
from mailcore.ports import AccountDirectory, Token


def log_in(address: str, password: str, directory: AccountDirectory) -> Token:
    try:
        canonical = str(parse_address(address))
    except InvalidAddress as exc:
        # Same answer as a wrong password: the endpoint must not reveal which accounts exist.
        raise AuthenticationFailed("malformed address") from exc
    return directory.authenticate(canonical, password)
