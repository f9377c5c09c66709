"""The submission port: STARTTLS, then AUTH, then mail from the account's own address."""

from __future__ import annotations

import smtplib

import pytest

from mailcore.adapters.memory.store import InMemoryMessageStore
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
    store = InMemoryMessageStore()
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
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        forged = OWN_MESSAGE.replace(b"From: Bob <bob@hamburger.edu>", b"From: ceo@hamburger.edu")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(BOB, ["zoe@elsewhere.test"], forged)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (553, b"5.7.1")
    assert store.message_keys() == []


FORGERIES = {
    "space before the colon": b"From : ceo@bank.example\r\nFrom: bob@hamburger.edu\r\n",
    "tab before the colon": b"From: bob@hamburger.edu\r\nFrom\t: ceo@bank.example\r\n",
    "unix From line first": b"From ceo@bank.example\r\nFrom: bob@hamburger.edu\r\n",
    "second From after a malformed line": (b"From: bob@hamburger.edu\r\nnot a header\r\n"
                                           b"From: ceo@bank.example\r\n"),
    "two From fields": b"From: bob@hamburger.edu\r\nFrom: ceo@bank.example\r\n",
    "no From at all": b"Sender: bob@hamburger.edu\r\n",
    "two mailboxes in one From": b"From: bob@hamburger.edu, ceo@bank.example\r\n",
    "folded first line": b" From: ceo@bank.example\r\nFrom: bob@hamburger.edu\r\n",
    "group syntax": b"From: Staff: ceo@bank.example;\r\n",
    "nested comments": b"From: " + b"(" * 2000 + b"bob@hamburger.edu\r\n",
    "encoded-word address": b"From: =?utf-8?q?ceo=40bank.example?=\r\n",
    "display name that looks like your address": (b'From: "bob@hamburger.edu" '
                                                  b"<ceo@bank.example>\r\n"),
    "Sender of another": b"From: bob@hamburger.edu\r\nSender: ceo@bank.example\r\n",
    "two Sender fields": (b"From: bob@hamburger.edu\r\nSender: bob@hamburger.edu\r\n"
                          b"Sender: ceo@bank.example\r\n"),
    "a defect in your own From": b"From: Bob <bob@hamburger.edu\r\n",
    # RFC 5322 3.6.6: who resent the message; readers show it as the sender of a resend.
    "Resent-From of another": b"From: bob@hamburger.edu\r\nResent-From: ceo@bank.example\r\n",
    "Resent-Sender of another": (b"From: bob@hamburger.edu\r\nResent-From: bob@hamburger.edu\r\n"
                                 b"Resent-Sender: ceo@bank.example\r\n"),
    "Resent-From in another case": b"From: bob@hamburger.edu\r\nrESENT-fROM: ceo@bank.example\r\n",
}


@pytest.mark.parametrize("headers", FORGERIES.values(), ids=FORGERIES.keys())
def test_submitted_header_section_must_be_well_formed_with_one_from_of_your_own(headers):
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        message = headers + b"To: zoe@elsewhere.test\r\nSubject: out\r\n\r\nHello\r\n"
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(BOB, ["zoe@elsewhere.test"], message)
        assert refused.value.smtp_code in (550, 553)
        assert refused.value.smtp_error[:5] in (b"5.6.0", b"5.7.1")
    assert store.message_keys() == []


def test_your_own_from_with_a_display_name_and_folded_fields_is_accepted():
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        message = (b"From: \"Bob, of Hamburger\" <bob@hamburger.edu>\r\nTo: zoe@elsewhere.test,"
                   b"\r\n yan@elsewhere.test\r\nSubject: a long\r\n\tsubject\r\n\r\nHi\r\n")
        assert client.sendmail(BOB, ["zoe@elsewhere.test"], message) == {}
    assert len(store.message_keys()) == 1


def test_a_hosted_recipient_without_an_account_is_refused_at_rcpt():
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        client.mail(BOB)
        code, reply = client.rcpt("nobody@hamburger.edu")
        assert (code, reply[:5]) == (550, b"5.1.1")
        assert client.rcpt("carol@hamburger.edu")[0] == 250
        assert client.rcpt("zoe@elsewhere.test")[0] == 250


def test_recipients_beyond_the_hourly_sending_limit_get_450_4_7_1():
    from mailcore.adapters.memory.sending_limit import InMemorySendingLimit

    store = InMemoryMessageStore()
    with running_edge(store, sending_limit=InMemorySendingLimit(per_hour=3)) as edge:
        client = _session(edge)
        client.login(BOB, "bob-password")
        assert client.sendmail(BOB, ["zoe@elsewhere.test", "yan@elsewhere.test"],
                               OWN_MESSAGE) == {}
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(BOB, ["zoe@elsewhere.test", "yan@elsewhere.test"], OWN_MESSAGE)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (450, b"4.7.1")
        assert client.sendmail(BOB, ["zoe@elsewhere.test"], OWN_MESSAGE) == {}
    assert len(store.message_keys()) == 2
