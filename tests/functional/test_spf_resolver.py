"""SPF through a real DNS server: the evaluator on ResolverDns (dnspython's asynchronous
resolver, the stack's one resolver) asking dnsmasq on loopback, and on servers that drop
queries or answer SERVFAIL, which must give temperror within the evaluation's budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from mailcore.adapters.dns_resolver import DnsServer, ResolverDns, async_resolver
from mailcore.authentication.spf import check_host, check_session
from mailcore.domain.verdict import Result, SpfVerdict
from tests.dns_support import BrokenDns, Dnsmasq, Zone

# A record longer than one TXT string (255 bytes): the resolver joins its strings (§3.3).
MANY_NETWORKS = " ".join(f"ip4:10.{n}.0.0/16" for n in range(30))
ZONE = Zone(
    txt={"crepes.test": ["v=spf1 ip4:192.0.2.0/24 include:_spf.crepes.test -all"],
         "_spf.crepes.test": ["v=spf1 ip4:198.51.100.0/24 mx a:relay.crepes.test ~all"],
         "long.crepes.test": [f"v=spf1 {MANY_NETWORKS} ptr:crepes.test -all"],
         "twice.crepes.test": ["v=spf1 +all", "v=spf1 -all"],
         "voids.crepes.test": ["v=spf1 a:a.none.test a:b.none.test a:c.none.test +all"],
         "mail.crepes.test": ["v=spf1 a -all"]},
    mx={"_spf.crepes.test": [(10, "mx.crepes.test")]},
    a={"mx.crepes.test": ["203.0.113.5", "2001:db8::5"], "relay.crepes.test": ["203.0.113.7"],
       "mail.crepes.test": ["127.0.0.1"], "sender.crepes.test": ["203.0.113.9"]},
    ptr={"203.0.113.9": "sender.crepes.test"},
)


@pytest.fixture(scope="module")
def resolver() -> Iterator[ResolverDns]:
    with Dnsmasq(ZONE) as server:
        yield ResolverDns(async_resolver(DnsServer.parse(server.address)))


@pytest.mark.parametrize(("ip", "domain", "expected"), [
    ("192.0.2.9", "crepes.test", Result.PASS),  # ip4
    ("198.51.100.9", "crepes.test", Result.PASS),  # the include's ip4
    ("203.0.113.5", "crepes.test", Result.PASS),  # the include's mx, A
    ("2001:db8::5", "crepes.test", Result.PASS),  # ...AAAA
    ("::ffff:203.0.113.7", "crepes.test", Result.PASS),  # the include's a, IPv4-mapped
    ("203.0.113.99", "crepes.test", Result.FAIL),  # the include's ~all does not match
    ("10.29.1.1", "long.crepes.test", Result.PASS),  # the last term of a long record
    ("203.0.113.9", "long.crepes.test", Result.PASS),  # ptr, validated by its A record
    ("203.0.113.99", "long.crepes.test", Result.FAIL),
    ("192.0.2.9", "twice.crepes.test", Result.PERMERROR),
    ("192.0.2.9", "voids.crepes.test", Result.PERMERROR),
    ("192.0.2.9", "nothing.crepes.test", Result.NONE),
])
def test_check_host_through_dnsmasq(resolver: ResolverDns, ip: str, domain: str,
                                    expected: Result) -> None:
    verdict = asyncio.run(check_host(ip, domain, f"someone@{domain}", dns=resolver))
    assert (verdict.result, verdict.domain) == (expected, domain), verdict.reason


def test_a_bounce_from_a_helo_name_with_its_own_record(resolver: ResolverDns) -> None:
    helo, mail = asyncio.run(check_session("127.0.0.1", "mail.crepes.test", "",
                                           dns=resolver, receiver="mx.hamburger.test"))
    assert helo == mail
    assert (mail.result, mail.domain, mail.scope) == (Result.PASS, "mail.crepes.test", "helo")


def evaluate_on(server: BrokenDns, lookup_budget: float, budget: float
                ) -> tuple[SpfVerdict, float]:
    dns = ResolverDns(async_resolver(DnsServer.parse(server.address), lookup_budget),
                      lookup_budget)
    started = time.monotonic()
    verdict = asyncio.run(check_host("192.0.2.9", "crepes.test", "someone@crepes.test",
                                     dns=dns, budget=budget))
    return verdict, time.monotonic() - started


@pytest.mark.parametrize("behaviour", ["drop", "servfail"])
def test_a_dns_that_fails_gives_temperror_within_the_lookup_budget(behaviour: str) -> None:
    with BrokenDns(behaviour) as server:
        verdict, elapsed = evaluate_on(server, lookup_budget=0.5, budget=5.0)
    assert verdict.result is Result.TEMPERROR, verdict.reason
    assert elapsed < 1.5
    assert server.queries >= 1


def test_a_dns_that_never_answers_gives_temperror_within_the_evaluation_budget() -> None:
    with BrokenDns("drop") as server:
        verdict, elapsed = evaluate_on(server, lookup_budget=3.0, budget=0.5)
    assert verdict.result is Result.TEMPERROR
    assert "0.5 s" in verdict.reason
    assert 0.5 <= elapsed < 1.5
