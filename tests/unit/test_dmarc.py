"""DMARC (RFC 7489): record parsing, discovery at the From and organisational domain,
alignment, pct sampling, several From domains, DNS failures."""

from __future__ import annotations

import asyncio

import pytest

from mailcore.authentication.dmarc import (
    aligned,
    check_dmarc,
    discover,
    from_domains,
    organisational_domain,
    parse_record,
)
from mailcore.authentication.dns import DnsFailure
from mailcore.domain.verdict import Disposition, DkimVerdict, Result, SpfVerdict


class RecordedDns:
    """TXT answers by name; records every name asked; `failing` names raise DnsFailure."""

    def __init__(self, txt: dict[str, list[str]], failing: tuple[str, ...] = ()) -> None:
        self.records = txt
        self.failing = failing
        self.asked: list[str] = []

    async def txt(self, name: str) -> list[str]:
        self.asked.append(name)
        if name in self.failing:
            raise DnsFailure(f"TXT {name}: timeout")
        return self.records.get(name, [])


def test_record_tags_and_defaults() -> None:
    record = parse_record("v=DMARC1; p=Reject; sp=quarantine; adkim=s; pct=30; rua=mailto:a@b")
    assert record is not None
    assert (record.policy, record.subdomain_policy, record.strict_dkim, record.strict_spf,
            record.percent) == ("reject", "quarantine", True, False, 30)
    assert parse_record("p=reject; v=DMARC1") is None  # v= must come first
    assert parse_record("v=spf1 -all") is None
    assert parse_record("v=DMARC1; p=bogus") is None  # no usable p=, no rua=: no DMARC
    lenient = parse_record("v=DMARC1; p=bogus; rua=mailto:d@crepes.fr")
    assert lenient is not None and lenient.policy == "none"  # §6.6.3


def test_organisational_domain_from_the_shipped_list() -> None:
    assert organisational_domain("a.b.crepes.fr") == "crepes.fr"
    assert organisational_domain("mail.example.co.uk") == "example.co.uk"
    assert organisational_domain("co.uk") == "co.uk"


def test_alignment_relaxed_and_strict() -> None:
    assert aligned("crepes.fr", "mail.crepes.fr", strict=False)
    assert not aligned("crepes.fr", "mail.crepes.fr", strict=True)
    assert aligned("CREPES.fr", "crepes.FR.", strict=True)
    # A public suffix is nobody's organisational domain: co.uk aligns with nothing under it.
    assert not aligned("example.co.uk", "co.uk", strict=False)
    assert not aligned("example.co.uk", "other.co.uk", strict=False)


def test_discovery_falls_back_to_the_organisational_domain() -> None:
    dns = RecordedDns({"_dmarc.crepes.fr": ["v=DMARC1; p=reject; sp=quarantine"]})
    found = asyncio.run(discover("news.crepes.fr", dns))
    assert dns.asked == ["_dmarc.news.crepes.fr", "_dmarc.crepes.fr"]
    assert found is not None and found.at_organisational_domain
    assert found.applicable == "quarantine"  # sp= for a subdomain
    own = asyncio.run(discover("crepes.fr", dns))
    assert own is not None and own.applicable == "reject"
    several = RecordedDns({"_dmarc.crepes.fr": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]})
    assert asyncio.run(discover("crepes.fr", several)) is None  # §6.6.3 step 5


def _check(domains: list[str], dns: RecordedDns, spf: SpfVerdict,
           dkim: tuple[DkimVerdict, ...] = (), sample: float = 0.0):  # type: ignore[no-untyped-def]
    return asyncio.run(check_dmarc(domains, spf=spf, dkim=dkim, dns=dns,
                                   sample=lambda: sample))


REJECTING = RecordedDns({"_dmarc.crepes.fr": ["v=DMARC1; p=reject; pct=50"]})


def test_aligned_dkim_passes_where_spf_is_foreign() -> None:
    spf = SpfVerdict(Result.PASS, "bounces.mailer.example")
    dkim = (DkimVerdict(Result.FAIL, "crepes.fr"), DkimVerdict(Result.PASS, "mail.crepes.fr"))
    verdict = _check(["crepes.fr"], REJECTING, spf, dkim)
    assert verdict.result is Result.PASS and verdict.disposition is Disposition.DELIVER
    assert verdict.policy == "reject"


def test_failure_under_pct_is_sampled_with_the_injected_random() -> None:
    spf = SpfVerdict(Result.PASS, "elsewhere.example")
    inside = _check(["crepes.fr"], REJECTING, spf, sample=0.49)
    outside = _check(["crepes.fr"], REJECTING, spf, sample=0.50)
    assert (inside.result, inside.disposition) == (Result.FAIL, Disposition.REJECT)
    assert (outside.result, outside.disposition) == (Result.FAIL, Disposition.QUARANTINE)


def test_strictest_failing_policy_of_several_from_domains() -> None:
    dns = RecordedDns({"_dmarc.crepes.fr": ["v=DMARC1; p=quarantine"],
                       "_dmarc.hamburger.edu": ["v=DMARC1; p=reject"]})
    spf = SpfVerdict(Result.PASS, "crepes.fr")
    verdict = _check(["crepes.fr", "hamburger.edu"], dns, spf)
    assert (verdict.from_domain, verdict.disposition) == ("hamburger.edu", Disposition.REJECT)


@pytest.mark.parametrize("failing", ["_dmarc.crepes.fr", "_dmarc.news.crepes.fr"])
def test_a_dns_failure_is_temperror_and_delivers(failing: str) -> None:
    dns = RecordedDns({"_dmarc.crepes.fr": ["v=DMARC1; p=reject"]}, failing=(failing,))
    verdict = _check(["news.crepes.fr"], dns, SpfVerdict(Result.FAIL, "x.example"))
    assert (verdict.result, verdict.disposition) == (Result.TEMPERROR, Disposition.DELIVER)


def test_a_method_temperror_is_not_held_against_the_sender() -> None:
    verdict = _check(["crepes.fr"], REJECTING, SpfVerdict(Result.TEMPERROR, "crepes.fr"),
                     sample=0.0)
    assert (verdict.result, verdict.disposition) == (Result.TEMPERROR, Disposition.DELIVER)


def test_no_record_and_no_from() -> None:
    verdict = _check(["nodmarc.example"], REJECTING, SpfVerdict(Result.FAIL, "x.example"))
    assert (verdict.result, verdict.disposition) == (Result.NONE, Disposition.DELIVER)
    assert _check([], REJECTING, SpfVerdict(Result.PASS, "x")).result is Result.NONE


def test_from_domains_of_a_header_section() -> None:
    raw = (b"From: Alice <alice@Crepes.FR>, bob@news.crepes.fr\r\n"
           b"From: \"x@evil.example\" <c@crepes.fr>\r\nSubject: s\r\n\r\nFrom: d@body.example\r\n")
    assert from_domains(raw) == ["crepes.fr", "news.crepes.fr"]
    assert from_domains(b"Subject: none\r\n\r\nbody\r\n") == []
