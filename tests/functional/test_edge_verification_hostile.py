"""Hostile senders against the MX edge's verification (issue 28 review): what they put in
the SMTP conversation and the message must never become a header field of ours, a verdict
they did not earn, or a stall of other sessions."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import pytest

from mailcore.s3_keys import message_key
from tests.dns_support import Dnsmasq
from tests.edge_support import Wire
from tests.functional.test_edge_verification import BOB, Mx, _message, _mx, _zone


@pytest.fixture(scope="module")
def mx() -> Iterator[Mx]:
    with Dnsmasq(_zone()) as dns, _mx(dns.address) as running:
        yield running


def _send_raw(mx: Mx, helo: bytes, mail_from: bytes, message: bytes) -> list[bytes]:
    wire = Wire(mx.edge.mx_port)
    try:
        wire.reply()
        wire.command(b"EHLO " + helo)
        assert wire.command(b"MAIL FROM:" + mail_from)[0].startswith(b"250")
        assert wire.command(f"RCPT TO:<{BOB}>".encode())[0].startswith(b"250")
        assert wire.command(b"DATA")[0].startswith(b"354")
        wire.send(message + b".\r\n")
        return wire.reply()
    finally:
        wire.close()


def _stored_bytes(mx: Mx, reply: list[bytes]) -> bytes:
    message_id = reply[-1].decode().rsplit(" ", 1)[1]
    return mx.store.get_message(message_key(message_id))[1]


def test_a_helo_with_a_bare_cr_adds_no_header_field_of_its_own(mx: Mx) -> None:
    # GIVEN a bounce (null MAIL FROM) whose HELO is not a domain name and carries a bare CR
    reply = _send_raw(mx, b"x\rFrom: ceo@hamburger.edu", b"<>",
                      _message("alice@waffles.be", "cr helo"))
    assert reply[-1].startswith(b"250"), reply
    stored = _stored_bytes(mx, reply)
    header = stored.split(b"\r\n\r\n", 1)[0]
    # THEN no bare CR reaches the stored header section...
    assert b"\r" not in header.replace(b"\r\n", b""), header[:400]
    # ...and a reader sees the one From the sender wrote
    parsed = email.message_from_bytes(stored, policy=email.policy.default)
    assert parsed.get_all("From") == ["Alice <alice@waffles.be>"]


def test_a_helo_with_a_bare_cr_cannot_show_a_hosted_from_in_the_inbox(mx: Mx) -> None:
    # GIVEN a sender whose real From is its own domain, and a HELO that smuggles another
    reply = _send_raw(mx, b"x\rFrom:ceo@hamburger.edu\rX-A:", b"<>",
                      _message("alice@pancakes.example", "cr helo from"))
    assert reply[-1].startswith(b"250"), reply
    message_id = reply[-1].decode().rsplit(" ", 1)[1]
    # WHEN it is filed and Bob's mailbox lists it
    folder = mx.file(message_id)
    shown = mx.mailboxes.get(BOB, message_id).summary.from_
    # THEN the list shows the From the sender wrote (or it is Junk, as a hosted claim)
    assert "ceo@hamburger.edu" not in shown or folder == "Junk", (folder, shown)


def _with_from(from_value: str, subject: str) -> bytes:
    return (f"From: {from_value}\r\nTo: Bob <{BOB}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n\r\nHello Bob.\r\n").encode()


def test_a_from_that_lists_as_a_hosted_address_is_junk(mx: Mx) -> None:
    # GIVEN a sender that passes SPF for its own domain (crepes.fr: DMARC aligned by SPF)
    # and a From that Bob's folder list shows as one of our domains
    # (two addr-specs without a comma: the verifier reads the second, the list the first)
    message_id = mx.send(_with_from("ceo@hamburger.edu alice@crepes.fr", "listed"),
                         "alice@crepes.fr")
    folder = mx.file(message_id)
    shown = mx.mailboxes.get(BOB, message_id).summary.from_
    # THEN it is filed into Junk, as any other claim of a hosted domain
    assert "@hamburger.edu" not in shown.replace('"', "") or folder == "Junk", (folder, shown)
