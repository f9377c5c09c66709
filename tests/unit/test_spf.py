"""The SPF evaluator against RFC 7208, one case per rule, each written from the RFC's text
(the section is in the case's name). DNS is an in-memory AsyncDns that records every query
and fails on purpose for chosen names; tests/functional/test_spf_resolver.py drives the same
evaluator through a real DNS server."""

from __future__ import annotations

import asyncio
import ipaddress
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.authentication.dns import DnsFailure
from mailcore.authentication.spf import check_host, check_session
from mailcore.authentication.spf_macros import (
    EXPLANATION_LETTERS,
    MacroValues,
    SpfSyntaxError,
    expand,
    parse_macro_string,
)
from mailcore.domain.verdict import Result, SpfVerdict

IP4 = "192.0.2.3"
IP6 = "2001:db8::cb01"


class FakeDns:
    """Records by kind, then by name (lower case, no final dot); PTR by address. A name in
    `failing` answers DnsFailure (a timeout or SERVFAIL); `delay` makes every answer slow."""

    def __init__(self, txt: dict[str, list[str]] | None = None,
                 a: dict[str, list[str]] | None = None, aaaa: dict[str, list[str]] | None = None,
                 mx: dict[str, list[tuple[int, str]]] | None = None,
                 ptr: dict[str, list[str]] | None = None) -> None:
        self.zone: dict[str, dict[str, list[Any]]] = {
            "txt": dict(txt or {}), "a": dict(a or {}), "aaaa": dict(aaaa or {}),
            "mx": dict(mx or {}), "ptr": dict(ptr or {})}
        self.failing: set[str] = set()
        self.delay = 0.0
        self.queries: list[tuple[str, str]] = []

    async def _answer(self, kind: str, name: str) -> list[Any]:
        key = name.lower().removesuffix(".")
        if kind == "ptr":
            key = str(ipaddress.ip_address(name))
        self.queries.append((kind, key))
        if self.delay:
            await asyncio.sleep(self.delay)
        if key in self.failing:
            raise DnsFailure(f"{kind} {key}: SERVFAIL")
        return list(self.zone[kind].get(key, []))

    async def txt(self, name: str) -> list[str]:
        return await self._answer("txt", name)

    async def a(self, name: str) -> list[str]:
        return await self._answer("a", name)

    async def aaaa(self, name: str) -> list[str]:
        return await self._answer("aaaa", name)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return await self._answer("mx", name)

    async def ptr(self, address: str) -> list[str]:
        return await self._answer("ptr", address)

    def asked(self, kind: str) -> list[str]:
        return [name for asked_kind, name in self.queries if asked_kind == kind]


def spf(record: str, **more: list[str]) -> FakeDns:
    """A zone where example.com publishes `record`; `more` adds TXT records by name with
    "_" for "." but the first (_spf_example_net → _spf.example.net)."""
    txt = {"example.com": [record]}
    txt.update({name[0] + name[1:].replace("_", "."): texts for name, texts in more.items()})
    return FakeDns(txt=txt)


def run(dns: FakeDns, ip: str = IP4, domain: str = "example.com",
        sender: str = "strong-bad@example.com", **options: object) -> SpfVerdict:
    return asyncio.run(check_host(ip, domain, sender, dns=dns, **options))  # type: ignore[arg-type]


# §4.5 Selecting records, §4.3 Initial processing ---------------------------------------

@pytest.mark.parametrize(("txt", "expected"), [
    ([], Result.NONE),  # no TXT at all
    (["google-site-verification=abc", "v=spf10 +all", "spf1 +all"], Result.NONE),
    (["v=spf1 +all", "v=spf1 -all"], Result.PERMERROR),  # more than one record
    (["some other text", "v=spf1 +all"], Result.PASS),
    (["V=SPF1 +all"], Result.PASS),  # ABNF strings are case-insensitive
    (["v=spf1"], Result.NEUTRAL),  # §4.7: nothing matched, no redirect
    (["v=spf1 "], Result.NEUTRAL),
])
def test_s4_5_record_selection(txt: list[str], expected: Result) -> None:
    assert run(FakeDns(txt={"example.com": txt})).result is expected


@pytest.mark.parametrize("domain", [
    "localhost", "example..com", ("a" * 64) + ".example.com", "[192.0.2.3]", "192.0.2.3",
    "", ".", ("abc." * 64) + "com"])
def test_s4_3_a_malformed_or_single_label_domain_is_none_without_a_query(domain: str) -> None:
    dns = FakeDns(txt={domain: ["v=spf1 +all"]})
    verdict = run(dns, domain=domain)
    assert verdict.result is Result.NONE
    assert dns.queries == []


def test_s4_3_a_final_dot_is_the_same_domain() -> None:
    assert run(spf("v=spf1 +all"), domain="example.com.").result is Result.PASS


def test_s4_3_a_sender_without_local_part_is_postmaster() -> None:
    dns = spf("v=spf1 exists:%{l}.%{o}.x.example.net -all")
    run(dns, sender="example.com")
    assert dns.asked("a") == ["postmaster.example.com.x.example.net"]


def test_s4_4_a_dns_failure_on_the_record_is_temperror() -> None:
    dns = spf("v=spf1 +all")
    dns.failing.add("example.com")
    assert run(dns).result is Result.TEMPERROR


def test_s3_4_a_record_over_a_udp_answer_is_read_and_one_over_4096_characters_is_not() -> None:
    networks = " ".join(f"ip4:10.{n}.0.0/16" for n in range(200))  # 3,290 characters
    assert run(spf(f"v=spf1 {networks} ip4:{IP4} -all")).result is Result.PASS
    longer = " ".join(f"ip4:10.{n}.0.0/16" for n in range(250))
    verdict = run(spf(f"v=spf1 {longer} ip4:{IP4} -all"))
    assert verdict.result is Result.PERMERROR and "characters" in verdict.reason


def test_an_ipv6_client_with_a_zone_is_its_address() -> None:
    assert run(spf("v=spf1 ip6:2001:db8::/32 -all"), ip=f"{IP6}%eth0").result is Result.PASS


def test_an_address_that_is_not_one_is_permerror() -> None:
    assert run(spf("v=spf1 +all"), ip="192.0.2.300").result is Result.PERMERROR


# §12 grammar, §4.6 "a syntax error anywhere is permerror", §6 modifiers -----------------

@pytest.mark.parametrize(("record", "expected"), [
    ("v=spf1 +all", Result.PASS),
    ("v=spf1 -all", Result.FAIL),
    ("v=spf1 ~all", Result.SOFTFAIL),
    ("v=spf1 ?all", Result.NEUTRAL),
    ("v=spf1 all", Result.PASS),  # §4.6.2: the qualifier defaults to "+"
    ("v=spf1 -ALL", Result.FAIL),  # mechanism names ignore case
    ("v=spf1   ip4:192.0.2.0/24    -all  ", Result.PASS),  # one or more spaces between terms
    ("v=spf1 -all ip4:192.0.2.3", Result.FAIL),  # §5.1: nothing after "all" is tested
    ("v=spf1 +all foo:bar", Result.PERMERROR),  # unknown mechanism, even after a match
    ("v=spf1 moo.cow-far_out=man:dog/cat +all", Result.PASS),  # unknown modifier: ignored
    ("v=spf1 foo=%{x} +all", Result.PERMERROR),  # ...but it is still a macro-string
    ("v=spf1 redirect=a.example.net redirect=b.example.net", Result.PERMERROR),
    ("v=spf1 exp=a.example.net exp=b.example.net +all", Result.PERMERROR),
    ("v=spf1 -all/24", Result.PERMERROR),
    ("v=spf1 ip4:192.0.2.0/024 +all", Result.PERMERROR),  # no leading zero in a length
    ("v=spf1 ip4:192.0.2.0/33 +all", Result.PERMERROR),
    ("v=spf1 ip6:2001:db8::/129 +all", Result.PERMERROR),
    ("v=spf1 ip4:192.0.2 +all", Result.PERMERROR),  # ip4-network is a dotted quad
    ("v=spf1 ip4:2001:db8:: +all", Result.PERMERROR),
    ("v=spf1 include +all", Result.PERMERROR),  # include needs a domain-spec
    ("v=spf1 a:foo.example.123 +all", Result.PERMERROR),  # a top label is not all digits
    ("v=spf1 a:localhost +all", Result.PERMERROR),  # domain-end needs "." and a top label
    ("v=spf1 exists:foo%.example.com +all", Result.PERMERROR),  # a lone %
    ("v=spf1 exists:%{c}.example.com +all", Result.PERMERROR),  # §7.1: c only in exp
    ("v=spf1 exists:%{d0}.example.com +all", Result.PERMERROR),  # §7.3: DIGIT nonzero
    ("v=spf1 exists:%{d2.example.com +all", Result.PERMERROR),  # unclosed macro
    ("v=spf1 +all\t-all", Result.PERMERROR),  # only SP separates terms
    ("v=spf1 ~ip4:192.0.2.0/24 -all", Result.SOFTFAIL),
])
def test_s12_grammar(record: str, expected: Result) -> None:
    assert run(spf(record)).result is expected


# §5 mechanisms -------------------------------------------------------------------------

ZONE = FakeDns(
    txt={"example.com": []},
    a={"example.com": ["192.0.2.3"], "mail.example.com": ["192.0.2.10"],
       "mx1.example.com": ["198.51.100.1"], "mx2.example.com": ["192.0.2.3"],
       "host.example.com": ["192.0.2.3"], "liar.example.org": ["203.0.113.9"],
       "3.2.0.192.in-addr._spf.example.com": ["127.0.0.2"]},
    aaaa={"example.com": ["2001:db8::cb01"], "mail.example.com": ["2001:db8::1:1"]},
    mx={"example.com": [(10, "mx1.example.com"), (20, "mx2.example.com")],
        "wide.example.com": [(10, "mail.example.com")]},
    ptr={"192.0.2.3": ["liar.example.org", "host.example.com"]},
)


def zone_with(record: str) -> FakeDns:
    return FakeDns(txt={"example.com": [record]}, a=ZONE.zone["a"], aaaa=ZONE.zone["aaaa"],
                   mx=ZONE.zone["mx"], ptr=ZONE.zone["ptr"])


@pytest.mark.parametrize(("record", "ip", "expected"), [
    ("v=spf1 ip4:192.0.2.0/24 -all", IP4, Result.PASS),
    ("v=spf1 ip4:192.0.2.200/24 -all", IP4, Result.PASS),  # host bits ignored
    ("v=spf1 ip4:192.0.2.4 -all", IP4, Result.FAIL),  # no length: /32
    ("v=spf1 ip4:0.0.0.0/0 -all", IP6, Result.FAIL),  # ip4 never matches an IPv6 client
    ("v=spf1 ip6:2001:db8::/32 -all", IP6, Result.PASS),
    ("v=spf1 ip6:::/0 -all", IP4, Result.FAIL),
    ("v=spf1 a -all", IP4, Result.PASS),  # §5.3: the current domain by default
    ("v=spf1 a -all", IP6, Result.PASS),  # ...AAAA for an IPv6 client
    ("v=spf1 a:mail.example.com -all", IP4, Result.FAIL),
    ("v=spf1 a:mail.example.com/24 -all", IP4, Result.PASS),  # the ip4-cidr-length
    ("v=spf1 a:mail.example.com/24 -all", IP6, Result.FAIL),  # ...not the IPv6 one
    ("v=spf1 a:mail.example.com//112 -all", IP6, Result.FAIL),
    ("v=spf1 a:mail.example.com//64 -all", IP6, Result.PASS),
    ("v=spf1 a/32//96 -all", IP6, Result.PASS),
    ("v=spf1 mx -all", IP4, Result.PASS),  # §5.4: mx2's address
    ("v=spf1 mx:wide.example.com -all", IP4, Result.FAIL),
    ("v=spf1 mx:wide.example.com/28 -all", IP4, Result.PASS),
    ("v=spf1 mx:mail.example.com -all", IP4, Result.FAIL),  # no MX: never the A (§5.4)
    ("v=spf1 ptr -all", IP4, Result.PASS),  # §5.5: host.example.com, a subdomain
    ("v=spf1 ptr:host.example.com -all", IP4, Result.PASS),
    ("v=spf1 ptr:mail.example.com -all", IP4, Result.FAIL),
    ("v=spf1 ptr:example.org -all", IP4, Result.FAIL),  # liar's A is not the client (§5.5)
    ("v=spf1 exists:%{ir}.%{v}._spf.%{d} -all", IP4, Result.PASS),
    ("v=spf1 exists:example.com -all", IP6, Result.PASS),  # §5.7: always an A query
    ("v=spf1 -ip4:192.0.2.0/24 +all", "::ffff:192.0.2.3", Result.FAIL),  # IPv4-mapped
    ("v=spf1 a -all", "::FFFF:192.0.2.3", Result.PASS),
])
def test_s5_mechanisms(record: str, ip: str, expected: Result) -> None:
    assert run(zone_with(record), ip=ip).result is expected


def test_s5_3_an_ipv6_client_asks_aaaa_and_an_ipv4_mapped_one_asks_a() -> None:
    six = zone_with("v=spf1 a:mail.example.com -all")
    run(six, ip=IP6)
    mapped = zone_with("v=spf1 a:mail.example.com -all")
    run(mapped, ip="::ffff:192.0.2.3")
    assert (six.asked("a"), six.asked("aaaa")) == ([], ["mail.example.com"])
    assert (mapped.asked("a"), mapped.asked("aaaa")) == (["mail.example.com"], [])


def test_s5_5_a_dns_error_on_ptr_matches_nothing_instead_of_temperror() -> None:
    dns = zone_with("v=spf1 ptr:example.com ~all")
    dns.failing.add(IP4)
    assert run(dns).result is Result.SOFTFAIL


def test_s5_5_a_dns_error_on_one_name_skips_that_name() -> None:
    dns = zone_with("v=spf1 ptr:example.com -all")
    dns.failing.add("liar.example.org")
    assert run(dns).result is Result.PASS


def test_s5_4_a_dns_error_on_an_exchange_is_temperror() -> None:
    dns = zone_with("v=spf1 mx -all")
    dns.failing.add("mx1.example.com")
    assert run(dns).result is Result.TEMPERROR


# §5.2 include --------------------------------------------------------------------------

@pytest.mark.parametrize(("included", "expected"), [
    ("v=spf1 +all", Result.PASS),  # pass: match, the include's qualifier applies
    ("v=spf1 -all", Result.NEUTRAL),  # fail: no match, on to ?all
    ("v=spf1 ~all", Result.NEUTRAL),
    ("v=spf1 ?all", Result.NEUTRAL),
    ("v=spf1", Result.NEUTRAL),
    ("v=spf1 foo:bar", Result.PERMERROR),  # permerror: permerror
    (None, Result.PERMERROR),  # none: permerror
])
def test_s5_2_include_results(included: str | None, expected: Result) -> None:
    dns = spf("v=spf1 include:_spf.example.net ?all")
    if included is not None:
        dns.zone["txt"]["_spf.example.net"] = [included]
    assert run(dns).result is expected


def test_s5_2_an_include_names_what_its_macros_expand_to() -> None:
    dns = FakeDns(txt={"example.com": ["v=spf1 include:%{l}._spf.%{d} -all"],
                       "a+b._spf.example.com": ["v=spf1 +all"]})
    assert run(dns, sender="a+b@example.com").result is Result.PASS
    assert run(dns, sender="c@example.com").result is Result.PERMERROR  # no record: none


def test_s5_2_an_include_that_cannot_be_looked_up_is_temperror() -> None:
    dns = spf("v=spf1 include:_spf.example.net +all", _spf_example_net=["v=spf1 +all"])
    dns.failing.add("_spf.example.net")
    assert run(dns).result is Result.TEMPERROR


def test_s5_2_the_include_qualifier_applies_on_its_pass() -> None:
    dns = spf("v=spf1 -include:_spf.example.net +all", _spf_example_net=["v=spf1 +all"])
    assert run(dns).result is Result.FAIL


# §6.1 redirect, §6.2 exp ---------------------------------------------------------------

@pytest.mark.parametrize(("record", "expected"), [
    ("v=spf1 redirect=_spf.example.net", Result.SOFTFAIL),
    ("v=spf1 ip4:198.51.100.0/24 redirect=_spf.example.net", Result.SOFTFAIL),
    ("v=spf1 ip4:192.0.2.3 redirect=_spf.example.net", Result.PASS),  # matched before
    ("v=spf1 redirect=_spf.example.net ?all", Result.NEUTRAL),  # ignored with an "all"
    ("v=spf1 redirect=nothing.example.net", Result.PERMERROR),  # no record: permerror
    ("v=spf1 redirect=%{l}.example.net", Result.PERMERROR),  # a name with no record
])
def test_s6_1_redirect(record: str, expected: Result) -> None:
    assert run(spf(record, _spf_example_net=["v=spf1 ~all"])).result is expected


def test_s6_2_a_fail_carries_the_expanded_explanation() -> None:
    dns = spf("v=spf1 -all exp=explain.example.com",
              explain_example_com=["%{i} is not one of %{d}'s designated mail servers."])
    verdict = run(dns, receiver="mx.example.org")
    assert verdict.result is Result.FAIL
    assert verdict.reason.endswith(
        "explanation: 192.0.2.3 is not one of example.com's designated mail servers.")


def test_s6_2_c_r_t_expand_in_an_explanation() -> None:
    dns = spf("v=spf1 -all exp=explain.example.com",
              explain_example_com=["%{c} asked %{r} at %{t}%_%%"])
    reason = run(dns, ip=IP6, receiver="mx.example.org").reason
    explained = reason.split("explanation: ")[1]
    assert explained.startswith("2001:db8::cb01 asked mx.example.org at ")
    assert explained.removeprefix("2001:db8::cb01 asked mx.example.org at ")[:-2].isdigit()
    assert explained.endswith(" %")


@pytest.mark.parametrize("explanations", [
    [],  # no record
    ["one", "two"],  # more than one
    ["a lone % sign"],  # a syntax error in the explanation
])
def test_s6_2_an_unusable_explanation_leaves_the_fail_alone(explanations: list[str]) -> None:
    verdict = run(spf("v=spf1 -all exp=explain.example.com",
                      explain_example_com=explanations))
    assert verdict.result is Result.FAIL
    assert "explanation" not in verdict.reason


def test_s6_2_a_dns_error_on_the_explanation_leaves_the_fail_alone() -> None:
    dns = spf("v=spf1 -all exp=explain.example.com", explain_example_com=["no"])
    dns.failing.add("explain.example.com")
    assert run(dns).result is Result.FAIL


def test_s6_2_the_explanation_is_fetched_only_for_a_fail() -> None:
    dns = spf("v=spf1 ~all exp=explain.example.com", explain_example_com=["no"])
    assert run(dns).result is Result.SOFTFAIL
    assert "explain.example.com" not in dns.asked("txt")


def test_s6_2_an_included_record_s_exp_is_not_used_and_a_redirect_target_s_is() -> None:
    included = spf("v=spf1 -include:_spf.example.net -all",
                   _spf_example_net=["v=spf1 -all exp=explain.example.net"],
                   explain_example_net=["included"])
    redirected = spf("v=spf1 redirect=_spf.example.net exp=explain.example.com",
                     _spf_example_net=["v=spf1 -all exp=explain.example.net"],
                     explain_example_net=["target's"], explain_example_com=["first's"])
    assert "explanation" not in run(included).reason
    assert run(redirected).reason.endswith("explanation: target's")


def test_s6_2_an_explanation_is_printable_and_bounded() -> None:
    dns = spf("v=spf1 -all exp=explain.example.com",
              explain_example_com=["%{l} " + "x" * 500])
    explained = run(dns, sender="bad\x07bell@example.com").reason.split("explanation: ")[1]
    assert explained.startswith("bad?bell x") and len(explained) == 200


# §7 macros: §7.4's examples (sender strong-bad@email.example.com) -------------------------

RFC_VALUES = MacroValues("strong-bad@email.example.com", "email.example.com",
                         ipaddress.ip_address(IP4), helo="mx.example.org")


@pytest.mark.parametrize(("macro", "expanded"), [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ("%{h}", "mx.example.org"),
    ("%{d128}", "email.example.com"),  # more parts asked for than there are: all of them
    ("%{s-.}", "strong.bad@email.example.com"),  # several delimiters
    ("%{s2-.}", "example.com"),
    ("%{L}", "strong-bad"),  # upper case: URL-escaped, nothing to escape here
    ("%{S}", "strong-bad%40email.example.com"),
    ("%%%_%-", "% %20"),
])
def test_s7_4_macro_examples(macro: str, expanded: str) -> None:
    assert expand(parse_macro_string(macro), RFC_VALUES) == expanded


def test_s7_4_the_ipv6_example() -> None:
    values = MacroValues("strong-bad@email.example.com", "email.example.com",
                         ipaddress.ip_address(IP6))
    assert expand(parse_macro_string("%{ir}.%{v}._spf.%{d2}"), values) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")


@pytest.mark.parametrize("text", ["%{x}", "%{c}", "%{t}", "%{r}", "%{d0}", "%{d*}", "%d",
                                  "50%", "%{}", "with space"])
def test_s7_1_macro_syntax_errors_outside_an_explanation(text: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_macro_string(text)


def test_s7_1_c_r_t_and_spaces_are_allowed_in_an_explanation() -> None:
    pieces = parse_macro_string("%{c} %{r} %{t}", EXPLANATION_LETTERS, allow_space=True)
    assert expand(pieces, RFC_VALUES).startswith("192.0.2.3 unknown ")


def test_s7_3_a_name_longer_than_253_loses_labels_from_the_left() -> None:
    dns = spf("v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.long.example.com -all")
    local = ".".join(["abcdefghij" * 5] * 2)  # 101 characters, two labels
    run(dns, sender=f"{local}@example.com")
    (asked,) = dns.asked("a")
    assert len(asked) <= 253 and asked.endswith(".long.example.com")
    assert len(asked) > 253 - 51  # only whole labels went
    assert asked.startswith("abcdefghij")


def test_s7_3_p_is_a_validated_name_and_counts_as_a_dns_term() -> None:
    dns = zone_with("v=spf1 exists:%{p}.names.example.net -all")
    run(dns)
    assert dns.asked("a")[-1] == "host.example.com.names.example.net"
    assert dns.asked("ptr") == [IP4]


def test_s7_3_p_without_a_validated_name_is_unknown() -> None:
    dns = FakeDns(txt={"example.com": ["v=spf1 exists:%{p}.names.example.net -all"]})
    run(dns)
    assert dns.asked("a") == ["unknown.names.example.net"]


# §4.6.4 processing limits --------------------------------------------------------------

def chain(length: int, last: str = "v=spf1 +all") -> FakeDns:
    """example.com includes i1.example.net, which includes i2..., the last publishes `last`."""
    txt = {"example.com": ["v=spf1 include:i1.example.net -all"]}
    for step in range(1, length):
        txt[f"i{step}.example.net"] = [f"v=spf1 include:i{step + 1}.example.net -all"]
    txt[f"i{length}.example.net"] = [last]
    return FakeDns(txt=txt)


def addresses(count: int) -> dict[str, list[str]]:
    return {f"h{n}.example.net": ["198.51.100.1"] for n in range(count)}


@pytest.mark.parametrize(("dns", "expected"), [
    (chain(10), Result.PASS),  # ten includes: the limit
    (chain(11), Result.PERMERROR),
    (chain(9, "v=spf1 redirect=last.example.net"), Result.PERMERROR),  # redirect counts
    (spf("v=spf1 include:example.com -all"), Result.PERMERROR),  # a loop ends at the limit
    (FakeDns(txt={"example.com": ["v=spf1 " + " ".join(f"a:h{n}.example.net" for n in range(10))
                                  + " ip4:192.0.2.3 -all"]}, a=addresses(10)), Result.PASS),
    (FakeDns(txt={"example.com": ["v=spf1 " + " ".join(f"a:h{n}.example.net" for n in range(11))
                                  + " ip4:192.0.2.3 -all"]}, a=addresses(11)), Result.PERMERROR),
    # all, ip4, ip6 and exp do not count; terms after the match are never evaluated
    (spf("v=spf1 " + "ip4:198.51.100.1 ip6:2001:db8::1 " * 20 + "+all exp=x.example.com"),
     Result.PASS),
    (spf("v=spf1 ip4:192.0.2.3 " + "include:i.example.net " * 20 + "-all"), Result.PASS),
    # two void lookups are allowed, the third is permerror
    (spf("v=spf1 a:v1.example.net mx:v2.example.net +all"), Result.PASS),
    (spf("v=spf1 a:v1.example.net mx:v2.example.net exists:v3.example.net +all"),
     Result.PERMERROR),
    (spf("v=spf1 ptr exists:v2.example.net exists:v3.example.net +all"), Result.PERMERROR),
])
def test_s4_6_4_limits(dns: FakeDns, expected: Result) -> None:
    assert run(dns).result is expected


def test_s4_6_4_more_than_ten_mx_names_is_permerror_ten_are_allowed() -> None:
    ten = [(n, f"h{n}.example.net") for n in range(10)]
    allowed = FakeDns(txt={"example.com": ["v=spf1 mx -all"]}, mx={"example.com": ten},
                      a={"h9.example.net": [IP4]})
    over = FakeDns(txt={"example.com": ["v=spf1 mx -all"]},
                   mx={"example.com": [*ten, (10, "h10.example.net")]},
                   a={"h9.example.net": [IP4]})
    assert run(allowed).result is Result.PASS
    assert run(over).result is Result.PERMERROR
    assert over.asked("a") == []


def test_s4_6_4_only_the_first_ten_ptr_names_are_tried() -> None:
    names = [f"h{n}.example.com" for n in range(11)]
    dns = FakeDns(txt={"example.com": ["v=spf1 ptr -all"]}, ptr={IP4: names},
                  a={"h10.example.com": [IP4]})
    assert run(dns).result is Result.FAIL
    assert "h10.example.com" not in dns.asked("a") and len(dns.asked("a")) == 10
    dns.zone["ptr"][IP4] = names[1:]
    assert run(dns).result is Result.PASS


# DNS failures and the time budget -------------------------------------------------------

@pytest.mark.parametrize("failing", ["a.example.net", "x.example.net", "example.net"])
def test_s2_6_6_a_dns_failure_in_a_term_is_temperror(failing: str) -> None:
    dns = spf("v=spf1 a:a.example.net exists:x.example.net mx:example.net -all")
    dns.zone["a"] = {"a.example.net": ["198.51.100.1"], "x.example.net": []}
    dns.zone["mx"] = {"example.net": [(10, "a.example.net")]}
    dns.failing.add(failing)
    verdict = run(dns)
    assert verdict.result is Result.TEMPERROR and failing in verdict.reason


def test_a_slow_dns_is_temperror_within_the_budget() -> None:
    dns = chain(10)
    dns.delay = 0.05  # 11 lookups in sequence: 0.55 s
    loop = asyncio.new_event_loop()
    try:
        started = loop.time()
        verdict = loop.run_until_complete(check_host(IP4, "example.com", "a@example.com",
                                                     dns=dns, budget=0.2))
        elapsed = loop.time() - started
    finally:
        loop.close()
    assert verdict.result is Result.TEMPERROR
    assert 0.2 <= elapsed < 0.4


# §2.3, §2.4 the session's identities -----------------------------------------------------

def session(helo: str, mail_from: str, dns: FakeDns) -> tuple[SpfVerdict | None, SpfVerdict]:
    return asyncio.run(check_session(IP4, helo, mail_from, dns=dns, receiver="mx.example.org"))


SESSION_ZONE = {"mail.example.org": ["v=spf1 ip4:192.0.2.3 -all"],
                "example.com": ["v=spf1 -all"]}


def test_s2_3_s2_4_helo_and_mail_from_are_both_checked() -> None:
    helo, mail = session("mail.example.org", "someone@example.com",
                         FakeDns(txt=dict(SESSION_ZONE)))
    assert helo is not None
    assert (helo.result, helo.domain, helo.scope) == (Result.PASS, "mail.example.org", "helo")
    assert (mail.result, mail.domain, mail.scope) == (Result.FAIL, "example.com", "mailfrom")


def test_s2_4_an_empty_mail_from_checks_postmaster_at_the_helo_name() -> None:
    dns = FakeDns(txt={"mail.example.org": [
        "v=spf1 exists:%{l}.%{o}.seen.example.net ip4:192.0.2.3 -all"]})
    helo, mail = session("mail.example.org", "", dns)
    assert (mail.result, mail.domain, mail.scope) == (Result.PASS, "mail.example.org", "helo")
    assert helo == mail
    assert dns.asked("a") == ["postmaster.mail.example.org.seen.example.net"]


@pytest.mark.parametrize("helo", ["[192.0.2.3]", "192.0.2.3", "localhost", ""])
def test_s2_3_a_helo_that_is_no_domain_name_has_no_verdict(helo: str) -> None:
    dns = FakeDns(txt=dict(SESSION_ZONE))
    assert session(helo, "someone@example.com", dns)[0] is None
    assert session(helo, "", dns) == (None, SpfVerdict(Result.NONE, helo, "helo",
                                                       "HELO is not a domain name"))
    assert dns.asked("txt") == ["example.com"]


# Any record at all gives a verdict ---------------------------------------------------------

TERMS = ["+all", "-all", "~all", "?all", "a", "mx", "ptr", "a/24", "mx//64", "ip4:192.0.2.0/24",
         "ip6:2001:db8::/32", "include:example.com", "include:other.example.net",
         "exists:%{ir}.%{v}.x.example.net", "redirect=example.com", "exp=x.example.net",
         "a:%{l}.%{d2}", "exists:%{p}.x.example.net", "moo=%{s}", "%", "="]
FUZZ_DNS = {"a": {"example.com": [IP4, "not an address"]},
            "aaaa": {"example.com": [IP6]},
            "mx": {"example.com": [(0, ""), (10, "example.com")]},
            "ptr": {IP4: ["example.com", "x" * 70 + ".example.com"]}}


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=string.printable, max_size=200),
       terms=st.lists(st.sampled_from(TERMS) | st.text(alphabet=string.printable, max_size=12),
                      max_size=12),
       ip=st.sampled_from([IP4, IP6, "::ffff:192.0.2.3"]),
       sender=st.text(alphabet=string.printable, max_size=30))
def test_any_record_text_gives_a_verdict(text: str, terms: list[str], ip: str,
                                         sender: str) -> None:
    record = "v=spf1 " + " ".join(terms) + " " + text
    dns = FakeDns(txt={"example.com": [record], "other.example.net": [text],
                       "x.example.net": [text]}, **FUZZ_DNS)  # type: ignore[arg-type]
    verdict = run(dns, ip=ip, sender=sender or "a@example.com", receiver=text)
    assert isinstance(verdict, SpfVerdict) and verdict.result in set(Result)
    assert len(dns.queries) <= 1 + 10 * 12  # the record, then the limits of §4.6.4


@settings(max_examples=100, deadline=None)
@given(ip=st.text(max_size=40) | st.sampled_from([IP4, IP6]), helo=st.text(max_size=40),
       mail_from=st.text(max_size=40) | st.just("a@example.com"))
def test_any_session_gives_a_mail_from_verdict(ip: str, helo: str, mail_from: str) -> None:
    dns = FakeDns(txt={"example.com": ["v=spf1 a mx ptr exists:%{h}.%{l}.x.example.net ~all"]},
                  **FUZZ_DNS)  # type: ignore[arg-type]
    helo_verdict, mail_verdict = asyncio.run(check_session(ip, helo, mail_from, dns=dns,
                                                           receiver="mx.example.org"))
    assert helo_verdict is None or helo_verdict.scope == "helo"
    assert mail_verdict.result in set(Result)
