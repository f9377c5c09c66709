"""The lockout counts before it checks: simultaneous logins for one address from one client
reserve their attempts before their passwords are checked, so no more than the limits
(5 per address, 10 per client) are ever checked, and a client opening several
connections at once with the right password is never refused. Through IMAP (imaplib),
SMTP AUTH (smtplib) and the API's POST /v1/session, each login in its own thread; the
directory is wrapped to count the passwords it checks and to take Cognito's time."""

from __future__ import annotations

import imaplib
import smtplib
import threading
import time
from collections.abc import Callable

import pytest

from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.ports import AccountDirectory, Token
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.edge_support import running_edge
from tests.functional.api_support import call
from tests.imap_support import ACCOUNTS, running_imap

BOB = "bob@hamburger.edu"
RIGHT = ACCOUNTS[BOB]
PER_ADDRESS, PER_CLIENT = 5, 10  # the throttles' defaults, as deployed
CHECK_SECONDS = 0.2  # about what Cognito takes to answer


class CountingDirectory:
    """The directory as the test wiring wraps it: each password it checks is recorded."""

    def __init__(self, inner: AccountDirectory) -> None:
        self._inner = inner
        self.checked: list[str] = []
        self._lock = threading.Lock()

    def is_account(self, address: str) -> bool:
        return self._inner.is_account(address)

    def authenticate(self, address: str, password: str) -> Token:
        with self._lock:
            self.checked.append(password)
        time.sleep(CHECK_SECONDS)
        return self._inner.authenticate(address, password)


def _all_at_once(login: Callable[[str], bool], passwords: list[str]) -> list[bool]:
    """Each password's login in its own thread, released together; who got in."""
    results: list[bool | None] = [None] * len(passwords)
    start = threading.Barrier(len(passwords))

    def one(index: int) -> None:
        start.wait()
        results[index] = login(passwords[index])

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results)
    return [bool(result) for result in results]


GUESSES = [f"guess-{number}" for number in range(19)]
# The right password among nineteen guesses, or twenty guesses alone.
RACES = {"right one among guesses": [*GUESSES[:10], RIGHT, *GUESSES[10:]],
         "guesses only": [*GUESSES, "guess-19"]}


def _assert_at_most_the_limits_checked(checked: list[str], passwords: list[str]) -> None:
    wrong = [password for password in checked if password != RIGHT]
    if RIGHT in passwords:
        # A right one checked clears the address's failures (not the client's): the
        # client's limit then bounds what is checked.
        assert len(checked) <= PER_CLIENT, checked
    else:
        assert len(wrong) <= PER_ADDRESS, checked
    assert len(checked) < len(passwords)


# ---- IMAP -------------------------------------------------------------------------------
def _imap_login(imap) -> Callable[[str], bool]:  # type: ignore[no-untyped-def]
    def login(password: str) -> bool:
        client = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=imap.client_tls())
        try:
            client.login(BOB, password)
        except imaplib.IMAP4.error:
            return False
        finally:
            client.shutdown()
        return True
    return login


@pytest.mark.parametrize("passwords", RACES.values(), ids=RACES.keys())
def test_simultaneous_imap_logins_check_no_more_than_the_limit(passwords):
    directory = CountingDirectory(InMemoryAccountDirectory(ACCOUNTS))
    with running_imap(directory=directory) as imap:
        _all_at_once(_imap_login(imap), passwords)
    _assert_at_most_the_limits_checked(directory.checked, passwords)


def test_simultaneous_imap_logins_with_the_right_password_all_get_in():
    directory = CountingDirectory(InMemoryAccountDirectory(ACCOUNTS))
    with running_imap(directory=directory) as imap:
        assert _all_at_once(_imap_login(imap), [RIGHT] * 10) == [True] * 10


# ---- SMTP AUTH --------------------------------------------------------------------------
def _smtp_login(edge) -> Callable[[str], bool]:  # type: ignore[no-untyped-def]
    def login(password: str) -> bool:
        with smtplib.SMTP("127.0.0.1", edge.submission_port, timeout=30) as client:
            client.starttls(context=edge.client_tls())
            client.ehlo()
            client.user, client.password = BOB, password
            try:
                return client.auth("PLAIN", client.auth_plain, initial_response_ok=True)[0] == 235
            except smtplib.SMTPAuthenticationError:
                return False
    return login


@pytest.mark.parametrize("passwords", RACES.values(), ids=RACES.keys())
def test_simultaneous_smtp_auths_check_no_more_than_the_limit(passwords):
    directory = CountingDirectory(InMemoryAccountDirectory(ACCOUNTS))
    with running_edge(directory=directory) as edge:
        _all_at_once(_smtp_login(edge), passwords)
    _assert_at_most_the_limits_checked(directory.checked, passwords)


def test_simultaneous_smtp_auths_with_the_right_password_all_get_in():
    directory = CountingDirectory(InMemoryAccountDirectory(ACCOUNTS))
    with running_edge(directory=directory) as edge:
        assert _all_at_once(_smtp_login(edge), [RIGHT] * 10) == [True] * 10


# ---- the API, on the DynamoDB throttle and Cognito (moto) -------------------------------
@pytest.fixture
def counted_api(stack, monkeypatch):
    cognito = aws_adapters().directory
    cognito.create_account(BOB, RIGHT)
    checking = type(cognito).authenticate

    class Unwrapped:
        def is_account(self, address: str) -> bool:
            return cognito.is_account(address)

        def authenticate(self, address: str, password: str) -> Token:
            return checking(cognito, address, password)

    counting = CountingDirectory(Unwrapped())
    # The wiring the handler uses (a frozen dataclass): its directory's check, wrapped.
    monkeypatch.setattr(type(cognito), "authenticate",
                        lambda self, address, password: counting.authenticate(address, password))
    return load_function("serve_api"), counting


def _api_login(api) -> Callable[[str], bool]:  # type: ignore[no-untyped-def]
    def login(password: str) -> bool:
        reply = call(api, "POST", "/v1/session", account=None, client_ip="198.51.100.20",
                     body={"address": BOB, "password": password})
        assert reply.status in (200, 401, 429), reply.body
        return reply.status == 200
    return login


@pytest.mark.concurrent
@pytest.mark.parametrize("passwords", RACES.values(), ids=RACES.keys())
def test_simultaneous_api_sessions_check_no_more_than_the_limit(counted_api, passwords):
    api, directory = counted_api
    _all_at_once(_api_login(api), passwords)
    _assert_at_most_the_limits_checked(directory.checked, passwords)


@pytest.mark.concurrent
def test_simultaneous_api_sessions_with_the_right_password_all_get_in(counted_api):
    api, _ = counted_api
    assert _all_at_once(_api_login(api), [RIGHT] * 10) == [True] * 10
