"""Logging in, on every port: the API's session, SMTP AUTH, and next IMAP. One lockout,
counted in one place, so guessing on one port or one task is guessing on all of them."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.address import parse_address
from mailcore.errors import AuthenticationFailed, InvalidAddress
from mailcore.ports import AccountDirectory, LoginThrottle, Token


@dataclass(frozen=True)
class LoggedIn:
    account: str  # the canonical address
    token: Token


def log_in(address: str, password: str, client: str, directory: AccountDirectory,
           throttle: LoginThrottle) -> LoggedIn:
    """Unknown address, malformed address and wrong password fail alike, and each counts
    towards the address's and the client's throttles, so the answers say nothing about
    who has an account. Throttled, AuthenticationFailed or TransientFailure otherwise."""
    try:
        canonical: str | None = str(parse_address(address))
    except InvalidAddress:
        canonical = None
    key = canonical or address.strip().lower()
    throttle.check(key, client)
    try:
        if canonical is None:
            raise AuthenticationFailed("malformed address")
        token = directory.authenticate(canonical, password)
    except AuthenticationFailed:
        throttle.failed(key, client)
        raise
    throttle.succeeded(key)
    return LoggedIn(canonical, token)
