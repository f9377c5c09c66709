"""What a reader is told about a message's authentication, from the Authentication-Results
field our edge wrote (mailcore/authentication/display.py), read from stored bytes."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.authentication.display import MAX_DKIM
from mailcore.domain.verdict import Result
from mailcore.services.reading import authentication_of

OURS = "mx.hamburger.edu"
INBOUND = (
    "Authentication-Results: mx.hamburger.edu; spf=pass smtp.mailfrom=crepes.fr;\r\n"
    "\tdkim=pass header.d=crepes.fr header.s=mp20261207r header.a=rsa-sha256"
    " header.b=abcd1234;\r\n"
    "\tdkim=pass header.d=crepes.fr header.s=mp20261207e header.a=ed25519-sha256"
    " header.b=efgh5678;\r\n"
    "\tdmarc=pass (p=quarantine) header.from=crepes.fr\r\n")


def _message(fields: str, sender: str = "Alice <alice@crepes.fr>") -> bytes:
    return (f"{fields}Received: from crepes.fr by mx.hamburger.edu\r\n"
            f"From: {sender}\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n").encode()


def test_the_inbound_verdict_is_read_whole():
    shown = authentication_of(_message(INBOUND), OURS)

    assert shown is not None and shown.from_verified and shown.from_domain == "crepes.fr"
    assert (shown.spf.result, shown.spf.domain) == (Result.PASS, "crepes.fr")
    assert [(d.result, d.domain, d.selector, d.algorithm) for d in shown.dkim] == [
        (Result.PASS, "crepes.fr", "mp20261207r", "rsa-sha256"),
        (Result.PASS, "crepes.fr", "mp20261207e", "ed25519-sha256")]
    assert (shown.dmarc.result, shown.dmarc.from_domain, shown.dmarc.policy) == (
        Result.PASS, "crepes.fr", "quarantine")
    assert shown.auth is None


def test_our_own_users_mail_is_verified_by_its_sign_in():
    shown = authentication_of(_message(
        "Authentication-Results: mx.crepes.fr; auth=pass smtp.auth=alice@crepes.fr\r\n"),
        "MX.Crepes.FR.")

    assert shown is not None and shown.from_verified
    assert (shown.auth.result, shown.auth.account) == (Result.PASS, "alice@crepes.fr")
    assert (shown.spf, shown.dkim, shown.dmarc) == (None, (), None)


@pytest.mark.parametrize("field", [
    # RFC 8601 variants: a version, comments, policy.dmarc, an address as the mail-from
    "Authentication-Results: mx.hamburger.edu 1; (checked) spf=pass (ok)"
    " smtp.mailfrom=alice@Crepes.FR.; dkim=pass header.i=@crepes.fr;"
    " dmarc = pass policy.dmarc=reject header.from=crepes.fr\r\n",
    "Authentication-Results: (edge) MX.HAMBURGER.EDU;\r\n dmarc=pass header.from=CREPES.fr;"
    " spf=pass smtp.helo=out.crepes.fr; spf=pass smtp.mailfrom=crepes.fr\r\n",
])
def test_valid_variants_of_the_field_are_read(field):
    shown = authentication_of(_message(field), OURS)

    assert shown is not None and shown.from_verified
    assert shown.dmarc.from_domain == "crepes.fr"
    assert (shown.spf.result, shown.spf.domain) == (Result.PASS, "crepes.fr")


def test_a_spoofed_from_is_not_verified():
    field = ("Authentication-Results: mx.hamburger.edu; spf=pass smtp.mailfrom=evil.example;"
             " dkim=none; dmarc=fail (p=none) header.from=hamburger.edu\r\n")
    shown = authentication_of(_message(field, "CEO <ceo@hamburger.edu>"), OURS)

    assert shown is not None and not shown.from_verified
    assert shown.from_domain == "hamburger.edu"
    assert (shown.dmarc.result, shown.dmarc.policy) == (Result.FAIL, "none")


def test_dmarc_passing_for_another_domain_than_the_from_shown_verifies_nothing():
    shown = authentication_of(_message(INBOUND, "Bank <alerts@bank.example>"), OURS)

    assert shown is not None and shown.from_domain == "bank.example"
    assert not shown.from_verified


@pytest.mark.parametrize("sender_fields", [
    "From: alice@crepes.fr\r\nFrom: ceo@hamburger.edu\r\n",  # two From fields
    "From: alice@crepes.fr, ceo@hamburger.edu\r\n",  # addresses of two domains
    "",  # none
])
def test_a_from_that_is_not_one_domain_is_not_verified(sender_fields):
    raw = (INBOUND + sender_fields + "Subject: hi\r\n\r\nbody\r\n").encode()

    shown = authentication_of(raw, OURS)

    assert shown is not None and shown.from_domain is None and not shown.from_verified


def test_only_the_first_field_with_our_id_is_believed():
    forged = ("Authentication-Results: mx.hamburger.edu; dmarc=pass header.from=crepes.fr\r\n"
              "Authentication-Results: gmail.example; dmarc=pass header.from=crepes.fr\r\n")
    ours = ("Authentication-Results: mx.hamburger.edu; spf=fail smtp.mailfrom=crepes.fr;"
            " dmarc=fail header.from=crepes.fr\r\n")
    foreign = "Authentication-Results: mx.crepes.fr; auth=pass smtp.auth=alice@crepes.fr\r\n"

    shown = authentication_of(_message(foreign + ours + forged), OURS)

    assert shown is not None and not shown.from_verified
    assert (shown.dmarc.result, shown.auth) == (Result.FAIL, None)


def test_no_field_of_ours_is_no_verdict():
    foreign = "Authentication-Results: mx.crepes.fr; dmarc=pass header.from=crepes.fr\r\n"

    assert authentication_of(_message(""), OURS) is None
    assert authentication_of(_message(foreign), OURS) is None
    # a name that merely starts like ours is another name
    assert authentication_of(_message(foreign.replace("mx.crepes.fr", OURS + ".evil")),
                             OURS) is None


HOSTILE = [
    "mx.hamburger.edu; dkim=pass (" + "(" * 5000,  # nested comments: authres recurses
    "mx.hamburger.edu; " + "dkim=pass header.d=a; " * 2000,  # long, over the bound
    "mx.hamburger.edu; dmarc=pass header.from=\u00e9\u00e9.fr",  # not ASCII
    "mx.hamburger.edu; dmarc=\"pass\" header.from=crepes.fr",
    "mx.hamburger.edu; dmarc=pass header.from=" + "a" * 5000,
    "mx.hamburger.edu; dmarc=yes header.from=crepes.fr; spf=maybe",  # not RFC 8601 results
    "mx.hamburger.edu",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_damaged_field_of_ours_verifies_nothing_and_fails_nothing(value):
    started = time.monotonic()
    shown = authentication_of(_message(f"Authentication-Results: {value}\r\n"), OURS)
    elapsed = time.monotonic() - started

    assert elapsed < 0.5
    if shown is not None:  # "" claims no id
        assert not shown.from_verified
        assert len(shown.dkim) <= MAX_DKIM
        assert all(len(d.domain or "") <= 255 for d in shown.dkim)
        if shown.dmarc is not None:
            assert len(shown.dmarc.from_domain or "") <= 255
    else:
        assert not value


def test_many_fields_are_bounded():
    noise = "Authentication-Results: elsewhere.example; dkim=pass header.d=a\r\n" * 5000
    started = time.monotonic()

    assert authentication_of(_message(noise + INBOUND), OURS) is None  # past the first 100
    assert time.monotonic() - started < 1.0


def test_a_field_of_ours_too_long_to_read_whole_is_not_read_in_part():
    # What a sender of 50 signatures would make of our field: the DMARC pass at its end
    # is past the bound, and the field is not believed cut short.
    signatures = "".join(f"\tdkim=fail header.d=s{n}.crepes.fr header.b=abcdefgh;\r\n"
                         for n in range(150))
    field = INBOUND.replace("crepes.fr;\r\n", "crepes.fr;\r\n" + signatures, 1)

    shown = authentication_of(_message(field), OURS)

    assert shown is not None and not shown.from_verified and shown.dmarc is None


_PIECES = ["mx.hamburger.edu", ";", " ", "(", ")", '"', "\\", "=", ".", "@", ",", "<", ">",
           "\r\n ", "\u00e9", "dkim", "dmarc", "spf", "auth", "pass", "fail", "none",
           "header.d", "header.from", "smtp.mailfrom", "policy.dmarc", "smtp.auth", "1",
           "crepes.fr", "hamburger.edu"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.lists(st.sampled_from(_PIECES),
                                                                  max_size=12))
def test_whatever_the_field_and_the_from_say_reading_them_never_fails(field, sender):
    raw = (f"Authentication-Results: {''.join(field)}\r\nFrom: {''.join(sender)}\r\n\r\nx"
           ).encode()

    shown = authentication_of(raw, OURS)

    if shown is not None and shown.from_verified:  # a proof of the From's own domain only
        assert (shown.auth is not None
                or (shown.dmarc is not None and shown.dmarc.from_domain == shown.from_domain)
                or any(dkim.domain == shown.from_domain for dkim in shown.dkim))


def test_a_signature_of_the_froms_own_domain_verifies_it_where_dmarc_has_no_record():
    # dmarc=none: the domain publishes no policy, so DMARC passes nothing; its signature
    # still proves the domain sent it. A parent's or another's signature does not.
    field = ("Authentication-Results: mx.hamburger.edu; spf=none smtp.mailfrom=small.example;"
             " dkim=pass header.d={signer}; dmarc=none header.from=news.small.example\r\n")
    sender = "News <news@news.small.example>"

    own = authentication_of(_message(field.format(signer="news.small.example"), sender), OURS)
    parent = authentication_of(_message(field.format(signer="small.example"), sender), OURS)

    assert own is not None and own.from_verified
    assert parent is not None and not parent.from_verified
