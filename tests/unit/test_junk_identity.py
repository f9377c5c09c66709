"""Claimed and proven identities (mailcore.junk.identity): the From address as written, and
only what DMARC, an aligned DKIM signature or SPF pass, or an authenticated submission vouched
for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.domain.envelope import Envelope
from mailcore.domain.verdict import DkimVerdict, DmarcVerdict, Result, SpfVerdict, Verdict
from mailcore.junk.identity import claimed_identities, from_address, proven_identities

ANN = "ann@crepes.fr"


def _envelope(verdict: Verdict | None = None, submitted_by: str | None = None) -> Envelope:
    return Envelope(mail_from="bounce@mail.crepes.fr", rcpt_tos=("bob@hamburger.edu",),
                    peer="192.0.2.1", helo="mail.crepes.fr", tls=True,
                    received_at=datetime(2026, 12, 7, tzinfo=UTC), verdict=verdict,
                    submitted_by=submitted_by)


def _verdict(*, spf: tuple[Result, str] = (Result.NONE, "crepes.fr"),
             dkim: tuple[tuple[Result, str], ...] = (),
             dmarc: tuple[Result, str] | None = None) -> Verdict:
    return Verdict(spf=SpfVerdict(spf[0], spf[1]),
                   dkim=tuple(DkimVerdict(result, domain) for result, domain in dkim),
                   dmarc=None if dmarc is None else DmarcVerdict(dmarc[0], dmarc[1]))


@pytest.mark.parametrize(("header", "address"), [
    (b"From: Ann <Ann@Crepes.FR>", ANN),
    (b"From: ann@crepes.fr (Ann)", ANN),
    (b'From: "Ann, the one <x@y.example>" <ann@crepes.fr>', ANN),
    (b"From: =?utf-8?q?Ann_=C3=A9?= <ann@crepes.fr.>", ANN),
    (b"From : ann@crepes.fr", ANN),  # RFC 5322 4.5.1's obsolete white space
    (b"From: ann@crepes.fr, bob@b.example", ANN),
    (b"From: friends: ann@crepes.fr, bob@b.example;", ANN),
    (b"From: ann@b\xc3\xbccher.example", "ann@xn--bcher-kva.example"),
    (b"From: undisclosed", None),
    (b"From: <>", None),
    (b"To: ann@crepes.fr", None),
    (b"From: " + b"(" * 50_000, None),
    (b'From: \x00@"@', None),  # found by hypothesis: "@" is no host
    (b"From: ann@crepes..fr", None),
])
def test_from_address(header: bytes, address: str | None) -> None:
    raw = header + b"\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nFrom: not@this.example\r\n"
    assert from_address(raw) == address


def test_claimed_identities() -> None:
    assert claimed_identities(ANN) == (ANN, "crepes.fr")
    assert claimed_identities(None) == ()


@pytest.mark.parametrize(("verdict", "proven"), [
    (_verdict(dmarc=(Result.PASS, "crepes.fr")), (ANN, "crepes.fr")),
    # DMARC passed for another From domain (a message with two): not this address's.
    (_verdict(dmarc=(Result.PASS, "other.example")), ()),
    (_verdict(dkim=((Result.PASS, "crepes.fr"),), dmarc=(Result.FAIL, "crepes.fr")),
     ("crepes.fr",)),
    (_verdict(dkim=((Result.PASS, "mail.crepes.fr"),)), ("crepes.fr",)),  # relaxed
    (_verdict(dkim=((Result.FAIL, "crepes.fr"), (Result.PASS, "esp.example"))), ()),
    (_verdict(spf=(Result.PASS, "bounce.crepes.fr")), ("crepes.fr",)),
    (_verdict(spf=(Result.PASS, "esp.example")), ()),
    (_verdict(spf=(Result.SOFTFAIL, "crepes.fr")), ()),
    (_verdict(spf=(Result.TEMPERROR, "crepes.fr"), dkim=((Result.TEMPERROR, "crepes.fr"),)),
     ()),
    (None, ()),  # verification off: nothing proven
])
def test_proven_identities_from_the_verdict(verdict: Verdict | None,
                                            proven: tuple[str, ...]) -> None:
    assert proven_identities(_envelope(verdict), ANN) == proven


def test_no_from_address_proves_nothing() -> None:
    assert proven_identities(_envelope(_verdict(dmarc=(Result.PASS, "crepes.fr"))), None) == ()


def test_a_submission_proves_the_account_whatever_the_from_says() -> None:
    envelope = _envelope(None, submitted_by="Bob@Hamburger.edu")
    assert proven_identities(envelope, "ceo@bank.example") == (
        "bob@hamburger.edu", "hamburger.edu")


@settings(max_examples=100, deadline=None)
@given(field=st.binary(max_size=300) | st.text(
    alphabet="<>@.,;:()\"\\ \t\r\nab\u00e9\u3002\u200b\ud7ff=?", max_size=200).map(
        lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_from_field_gives_an_address_or_none(field: bytes) -> None:
    address = from_address(b"From: " + field + b"\r\nSubject: x\r\n\r\nbody\r\n")
    if address is not None:
        local, at, domain = address.rpartition("@")
        assert at and local and domain and address == address.lower()
        assert set(domain) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
        assert local.isprintable() and len(address) <= 254
        assert claimed_identities(address) == (address, domain)
