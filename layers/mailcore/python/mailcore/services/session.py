"""Logging in: an address and password become a bearer token."""

from __future__ import annotations

from mailcore.domain.address import parse_address
from mailcore.errors import AuthenticationFailed, InvalidAddress
from mailcore.ports import AccountDirectory, LoginThrottle, Token


def log_in(address: str, password: str, directory: AccountDirectory,
           throttle: LoginThrottle) -> Token:
    """Unknown address, malformed address and wrong password fail alike, and each counts
    towards the address's throttle, so the answers say nothing about who has an account."""
    try:
        canonical: str | None = str(parse_address(address))
    except InvalidAddress:
        canonical = None
    key = canonical or address.strip()
    throttle.check(key)
    try:
        if canonical is None:
            raise AuthenticationFailed("malformed address")
        token = directory.authenticate(canonical, password)
    except AuthenticationFailed:
        throttle.failed(key)
        raise
    throttle.succeeded(key)
    return token
