"""The submission port: STARTTLS, then AUTH, then mail from the account's own address."""

from __future__ import annotations

import smtplib

import pytest

from mailcore.adapters.memory.store import InMemoryRawMessageStore
from tests.edge_support import running_edge

BOB = "bob@hamburger.edu"
OWN_MESSAGE = (b"From: Bob <bob@hamburger.edu>\r\nTo: zoe@elsewhere.test\r\n"
               b"Subject: out\r\n\r\nHello Zoe\r\n")


def _session(edge, tls: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", edge.submission_port, timeout=10)
    client.ehlo("laptop.example")
    if tls:
        client.starttls(context=edge.client_tls())
        client.ehlo("laptop.example")
    return client


def test_nothing_but_starttls_before_tls_and_no_auth_offered():
    with running_edge() as edge:
        client = _session(edge, tls=False)
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, reply = client.mail(BOB)
        assert (code, reply[:5]) == (530, b"5.7.0")
        client.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_account_authenticates_and_sends_to_any_recipient(mechanism):
    store = InMemoryRawMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        client.user, client.password = BOB, "bob-password"
        authenticator = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        assert client.auth(mechanism, authenticator, initial_response_ok=False)[0] == 235
        assert client.sendmail(BOB, ["zoe@elsewhere.test", "carol@hamburger.edu"],
                               OWN_MESSAGE) == {}
        client.quit()
    [key] = store.message_keys()
    envelope = store.get_envelope(key)
    assert envelope.submitted_by == BOB
    assert envelope.rcpt_tos == ("zoe@elsewhere.test", "carol@hamburger.edu")
    assert b"with ESMTPSA id" in store.get_raw(key)


def test_mail_before_auth_is_refused_after_tls():
    with running_edge() as edge:
        client = _session(edge)
        code, reply = client.mail(BOB)
        assert (code, reply[:5]) == (530, b"5.7.0")


def test_wrong_password_gets_535_5_7_8():
    with running_edge() as edge:
        client = _session(edge)
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(BOB, "wrong")
        assert refused.value.smtp_code == 535
        assert refused.value.smtp_error.startswith(b"5.7.8")


def test_repeated_failures_lock_the_address_even_with_the_right_password():
    with running_edge() as edge:
        client = _session(edge)
        for _ in range(5):
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login(BOB, "guess")
        with pytest.raises(smtplib.SMTPAuthenticationError) as throttled:
            client.login(BOB, "bob-password")
        assert (throttled.value.smtp_code, throttled.value.smtp_error[:5]) == (454, b"4.7.0")
        # Another account from elsewhere is not locked by bob's guesser.
        other = _session(edge)
        other.login("carol@hamburger.edu", "carol-password")


def test_mail_from_must_be_the_accounts_own_address():
    with running_edge() as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        code, reply = client.mail("carol@hamburger.edu")
        assert (code, reply[:5]) == (553, b"5.7.1")
        assert client.mail("<>")[0] == 553


def test_from_header_must_be_the_accounts_own_address():
    store = InMemoryRawMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        forged = OWN_MESSAGE.replace(b"From: Bob <bob@hamburger.edu>", b"From: ceo@hamburger.edu")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(BOB, ["zoe@elsewhere.test"], forged)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (553, b"5.7.1")
    assert store.message_keys() == []
