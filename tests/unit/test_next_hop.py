"""MX resolution with an injected resolver: no network needed."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
import pytest

from mailcore.adapters.dns_next_hop import DnsNextHopResolver, NoMailDomain, parse_overrides
from mailcore.errors import TransientFailure
from mailcore.ports import NextHop


@dataclass
class Mx:
    preference: int
    exchange: str


class FakeResolver:
    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def resolve(self, name: str, rdtype: str):
        self.asked.append((name, rdtype))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_mx_hosts_are_tried_by_preference():
    resolver = FakeResolver({"crepes.fr": [Mx(20, "backup.crepes.fr."), Mx(10, "mx.crepes.fr.")]})
    assert DnsNextHopResolver(resolver).resolve("crepes.fr") == [
        NextHop("mx.crepes.fr", 25), NextHop("backup.crepes.fr", 25)]


def test_no_mx_falls_back_to_the_domains_own_address():
    resolver = FakeResolver({"crepes.fr": dns.resolver.NoAnswer()})
    assert DnsNextHopResolver(resolver).resolve("crepes.fr") == [NextHop("crepes.fr", 25)]


def test_null_mx_is_a_permanent_failure():
    resolver = FakeResolver({"crepes.fr": [Mx(0, ".")]})
    with pytest.raises(NoMailDomain) as refused:
        DnsNextHopResolver(resolver).resolve("crepes.fr")
    assert refused.value.status == "5.1.10"


def test_no_such_domain_is_a_permanent_failure():
    resolver = FakeResolver({"nowhere.test": dns.resolver.NXDOMAIN()})
    with pytest.raises(NoMailDomain) as refused:
        DnsNextHopResolver(resolver).resolve("nowhere.test")
    assert refused.value.status == "5.1.2"


def test_dns_timeout_is_transient():
    resolver = FakeResolver({"crepes.fr": dns.exception.Timeout()})
    with pytest.raises(TransientFailure):
        DnsNextHopResolver(resolver).resolve("crepes.fr")


def test_overrides_bypass_dns():
    resolver = FakeResolver({})
    hops = DnsNextHopResolver(resolver, overrides=parse_overrides(
        "Hamburger.edu=127.0.0.1:2525, crepes.fr=localhost:3525"))
    assert hops.resolve("hamburger.edu") == [NextHop("127.0.0.1", 2525, operator_named=True)]
    assert resolver.asked == []
