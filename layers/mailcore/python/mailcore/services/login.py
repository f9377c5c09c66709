"""Logging in, on every port: the API's session, SMTP AUTH, and next IMAP. One lockout,
counted in one place, so guessing on one port or one task is guessing on all of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mailcore.domain.address import parse_address
from mailcore.errors import AuthenticationFailed, InvalidAddress, LoginsInFlight
from mailcore.ports import AccountDirectory, LoginAttempt, LoginThrottle, Token

# How long a login waits for the attempts in flight before it (a client opening several
# connections at once with the right password): Cognito answers in well under a second.
IN_FLIGHT_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class LoggedIn:
    account: str  # the canonical address
    token: Token


def log_in(address: str, password: str, client: str, directory: AccountDirectory,
           throttle: LoginThrottle,
           sleep: Callable[[float], None] = time.sleep) -> LoggedIn:
    """Unknown address, malformed address and wrong password fail alike, and each counts
    towards the address's and the client's throttles, so the answers say nothing about
    who has an account. The attempt is counted before the password is checked, so
    simultaneous guesses never get more checks than the limit. Throttled,
    AuthenticationFailed or TransientFailure otherwise."""
    try:
        canonical: str | None = str(parse_address(address))
    except InvalidAddress:
        canonical = None
    key = canonical or address.strip().lower()
    attempt = _reserve(throttle, key, client, sleep)
    try:
        if canonical is None:
            raise AuthenticationFailed("malformed address")
        token = directory.authenticate(canonical, password)
    except AuthenticationFailed:
        throttle.failed(attempt)
        raise
    except BaseException:
        throttle.abandoned(attempt)
        raise
    throttle.succeeded(attempt)
    return LoggedIn(canonical, token)


def _reserve(throttle: LoginThrottle, key: str, client: str,
             sleep: Callable[[float], None]) -> LoginAttempt:
    """The attempt reserved; while only attempts still being checked fill the limit, wait
    for them (a success gives its reservation back), up to IN_FLIGHT_WAIT_SECONDS."""
    waited, delay = 0.0, 0.02
    while True:
        try:
            return throttle.reserve(key, client)
        except LoginsInFlight:
            if waited >= IN_FLIGHT_WAIT_SECONDS:
                raise
        sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.25)
