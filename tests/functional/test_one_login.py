"""One login service on every port: failures counted on the API lock SMTP AUTH and the
other way round, per address and per client, in the table every task shares."""

from __future__ import annotations

import smtplib

import pytest

from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.edge_support import running_edge
from tests.functional.api_support import BOB, CAROL, call

PASSWORD = "bob-password"


@pytest.fixture
def api(stack):
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, PASSWORD)
    return load_function("serve_api")


def _smtp_login(edge, address: str, password: str) -> int:
    """One AUTH PLAIN exchange (smtplib's login() would try LOGIN too after a 535)."""
    with smtplib.SMTP("127.0.0.1", edge.submission_port, timeout=10) as client:
        client.starttls(context=edge.client_tls())
        client.ehlo()
        client.user, client.password = address, password
        try:
            return client.auth("PLAIN", client.auth_plain, initial_response_ok=True)[0]
        except smtplib.SMTPAuthenticationError as refused:
            return refused.smtp_code


def test_guesses_on_the_api_lock_smtp_auth_for_that_address(api):
    for _ in range(5):
        assert call(api, "POST", "/v1/session", account=None,
                    body={"address": BOB, "password": "guess"}).status == 401
    with running_edge(accounts={BOB: PASSWORD, CAROL: PASSWORD},
                      throttle=aws_adapters().throttle) as edge:
        assert _smtp_login(edge, BOB, PASSWORD) == 454
        assert _smtp_login(edge, CAROL, PASSWORD) == 235


def test_guesses_on_smtp_auth_lock_the_api_for_that_client_and_address(api):
    with running_edge(accounts={BOB: PASSWORD, CAROL: PASSWORD},
                      throttle=aws_adapters().throttle) as edge:
        for _ in range(5):  # Carol's address: locked after these
            assert _smtp_login(edge, CAROL, "guess") == 535
        for number in range(5):  # the client's tenth failure locks the client
            assert _smtp_login(edge, f"user{number}@hamburger.edu", "guess") == 535
        assert _smtp_login(edge, BOB, PASSWORD) == 454
    # The edge's client was 127.0.0.1: from there, the API is locked too.
    assert call(api, "POST", "/v1/session", account=None, client_ip="127.0.0.1",
                body={"address": BOB, "password": PASSWORD}).status == 429
    # Carol's address is locked wherever she comes from; Bob elsewhere is not.
    assert call(api, "POST", "/v1/session", account=None, client_ip="203.0.113.9",
                body={"address": CAROL, "password": PASSWORD}).status == 429
    assert call(api, "POST", "/v1/session", account=None, client_ip="203.0.113.9",
                body={"address": BOB, "password": PASSWORD}).status == 200
