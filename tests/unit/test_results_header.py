"""The Authentication-Results field we write (parsed back with authres, as the API does)
and the removal of incoming fields that claim our authserv-id."""

from __future__ import annotations

import re

import authres
from hypothesis import given
from hypothesis import strategies as st

from mailcore.authentication.results_header import remove_our_results, results_header
from mailcore.domain.verdict import (
    Disposition,
    DkimVerdict,
    DmarcVerdict,
    Result,
    SpfVerdict,
    Verdict,
)

OURS = "mx.hamburger.edu"


def _parsed(field: bytes) -> list[tuple[str, str, dict[str, str]]]:
    text = field.decode("ascii")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert all(len(line) <= 100 for line in text.split("\r\n"))
    header = authres.parse(re.sub(r"\r\n[ \t]", " ", text).rstrip("\r\n"))
    assert header.authserv_id == OURS
    return [(result.method, result.result,
             {f"{prop.type}.{prop.name}": prop.value for prop in result.properties})
            for result in header.results]


def test_every_method_and_signature_in_one_field() -> None:
    verdict = Verdict(
        spf=SpfVerdict(Result.PASS, "crepes.fr"),
        helo_spf=SpfVerdict(Result.NONE, "mail.crepes.fr", "helo"),
        dkim=(DkimVerdict(Result.PASS, "crepes.fr", "mp20261207r", "rsa-sha256", "abcd1234"),
              DkimVerdict(Result.FAIL, "crepes.fr", "mp20261207e", "ed25519-sha256", "Zz+/9",
                          reason="body hash mismatch")),
        dmarc=DmarcVerdict(Result.PASS, "crepes.fr", "reject"))
    field = results_header(OURS, verdict)
    assert field.startswith(b"Authentication-Results: mx.hamburger.edu;\r\n\t")
    assert _parsed(field) == [
        ("spf", "pass", {"smtp.mailfrom": "crepes.fr"}),
        ("spf", "none", {"smtp.helo": "mail.crepes.fr"}),
        ("dkim", "pass", {"header.d": "crepes.fr", "header.s": "mp20261207r",
                          "header.a": "rsa-sha256", "header.b": "abcd1234"}),
        ("dkim", "fail", {"header.d": "crepes.fr", "header.s": "mp20261207e",
                          "header.a": "ed25519-sha256", "header.b": "Zz+/9"}),
        ("dmarc", "pass", {"header.from": "crepes.fr", "policy.dmarc": "reject"}),
    ]


def test_unsigned_spoof_of_a_hosted_domain() -> None:
    verdict = Verdict(spf=SpfVerdict(Result.FAIL, "evil.example", reason="not permitted"),
                      dmarc=DmarcVerdict(Result.FAIL, "hamburger.edu", "quarantine",
                                         Disposition.QUARANTINE, "no aligned pass"),
                      claims_hosted_domain=True)
    field = results_header(OURS, verdict)
    results = _parsed(field)
    assert [(method, result) for method, result, _ in results] == [
        ("spf", "fail"), ("dkim", "none"), ("dmarc", "fail")]
    assert b"hosted domain" in field


FIELD = st.sampled_from([
    b"Authentication-Results: mx.hamburger.edu; spf=pass smtp.mailfrom=x.example\r\n",
    b"authentication-results:(forged (nested)) MX.Hamburger.Edu;\r\n\tdkim=pass\r\n",
    b"Authentication-Results : \"mx.hamburger.edu\"; none\r\n",
])
OTHER = st.sampled_from([
    b"Authentication-Results: other.example; spf=pass\r\n",
    b"Authentication-Results: mx.hamburger.edu.evil.example; dkim=pass\r\n",
    b"X-Authentication-Results: mx.hamburger.edu; dkim=pass\r\n",
    b"Subject: Authentication-Results: mx.hamburger.edu;\r\n",
    b"Received: from a\r\n\tby b; Mon, 7 Dec 2026 10:00:00 +0000\r\n",
])
BODY = st.binary(max_size=200).map(
    lambda data: data + b"\r\nAuthentication-Results: mx.hamburger.edu; spf=pass\r\n")


@given(st.lists(st.tuples(st.booleans(), FIELD, OTHER), max_size=6), BODY)
def test_only_our_fields_go(fields: list[tuple[bool, bytes, bytes]], body: bytes) -> None:
    header = b"".join((ours if claim else b"") + other for claim, ours, other in fields)
    kept = b"".join(other for _, _, other in fields)
    raw = header + b"\r\n" + body
    assert remove_our_results(raw, "MX.hamburger.edu") == kept + b"\r\n" + body


def test_twice_is_once() -> None:
    raw = b"Authentication-Results: mx.hamburger.edu; spf=pass\r\nSubject: s\r\n\r\nbody\r\n"
    once = remove_our_results(raw, OURS)
    assert once == b"Subject: s\r\n\r\nbody\r\n"
    assert remove_our_results(once, OURS) == once


def test_a_bounce_names_its_helo_check_once() -> None:
    helo = SpfVerdict(Result.PASS, "mail.crepes.fr", "helo")
    field = results_header(OURS, Verdict(spf=helo, helo_spf=helo))
    assert [(method, result, props) for method, result, props in _parsed(field)
            if method == "spf"] == [("spf", "pass", {"smtp.helo": "mail.crepes.fr"})]
