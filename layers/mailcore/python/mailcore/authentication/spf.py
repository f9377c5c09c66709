"""SPF (RFC 7208): may this client address send mail for this domain?

check_host() (§4) on the asynchronous AsyncDns, so the edge's event loop never waits on a
lookup; check_session() checks what one SMTP session claims: its HELO name and its MAIL FROM
(§2.3, §2.4). pyspf resolves through a module-level synchronous resolver, hence this
evaluator. The record's grammar is in spf_record.py, its macros in spf_macros.py.

Every verdict is returned, never raised: a DNS timeout or SERVFAIL is temperror (§2.6.6),
the processing limits (§4.6.4) and syntax errors are permerror (§2.6.7).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Awaitable, Iterable
from typing import Protocol, TypeVar

from mailcore.authentication.dns import AsyncDns, DnsFailure
from mailcore.authentication.spf_macros import (
    EXPLANATION_LETTERS,
    MacroValues,
    Piece,
    SpfSyntaxError,
    expand,
    needs_validated_name,
    parse_macro_string,
    trim_name,
)
from mailcore.authentication.spf_record import (
    DNS_MECHANISMS,
    Directive,
    Record,
    askable,
    is_spf_record,
    parse_record,
    valid_domain,
)
from mailcore.domain.verdict import Result, SpfVerdict

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

# §4.6.4: ten DNS-querying terms in the whole evaluation, ten names per mx or ptr, two void
# lookups.
MAX_DNS_TERMS = 10
MAX_NAMES = 10
MAX_VOID_LOOKUPS = 2
# One evaluation's time budget. §4.6.4 asks for a limit that allows at least 20 seconds; the
# client waits far longer for our answer at the end of DATA (RFC 5321 §4.5.3.2.6: 10 minutes)
# and one lookup gives up after 3 s (adapters/dns_resolver.py LOOKUP_SECONDS), so 20 s lets
# a record that uses its ten terms in sequence finish while a slow zone costs one session
# 20 s at most, never the edge: everything here awaits.
BUDGET_SECONDS = 20.0
# §3.4: a record SHOULD fit a 512-octet UDP answer and one that does not "could be silently
# ignored". Parsing costs about 0.6 µs a character (measured: 16 µs for a typical 54-character
# record, 2.5 ms for 4,360 characters, 45 ms for 53 KB) and an evaluation reads up to 11
# records, so a longer record than this is permerror, and one over a UDP answer's size is
# parsed in a thread, not on the event loop (an explanation that long is not read at all).
MAX_RECORD_LENGTH = 4096
PARSED_ON_THE_LOOP = 512
# An explanation (§6.2) goes into the verdict's reason, which goes into a header comment
# and the log: printable ASCII, this long at most.
MAX_EXPLANATION = 200


class _Permanent(Exception):
    """Ends the evaluation with permerror (a limit crossed, a record that cannot be used)."""


class _Evaluation:
    """One check_host() with its includes and redirects: they share the limits (§4.6.4)."""

    def __init__(self, dns: AsyncDns, ip: Address, sender: str, helo: str,
                 receiver: str) -> None:
        self._dns = dns
        self._ip = ip
        self._sender = sender
        self._helo = helo
        self._receiver = receiver
        self._terms = 0
        self._voids = 0
        self._validated: dict[str, str] = {}

    async def check(self, domain: str) -> tuple[Result, str, Record | None]:
        """§4.4 to §4.7 for one domain: its record, its mechanisms in order, redirect."""
        records = [text for text in await self._dns.txt(domain) if is_spf_record(text)]
        if not records:
            return Result.NONE, f"{domain}: no SPF record", None
        if len(records) > 1:  # §4.5
            raise _Permanent(f"{domain}: more than one SPF record")
        text = records[0]
        if len(text) > MAX_RECORD_LENGTH:
            raise _Permanent(f"{domain}: a record of {len(text)} characters")
        try:
            record = (parse_record(text) if len(text) <= PARSED_ON_THE_LOOP
                      else await asyncio.to_thread(parse_record, text))
        except SpfSyntaxError as exc:
            raise _Permanent(f"{domain}: {exc}") from exc
        for directive in record.directives:
            if await self._matches(directive, domain):
                return directive.qualifier, f"{domain}: {directive.text} matched", record
        if record.redirect is None or record.has_all:
            return Result.NEUTRAL, f"{domain}: no mechanism matched", record
        self._count_term()
        target = await self._target(record.redirect, domain)
        if not valid_domain(target):  # §6.1: malformed or without a record is permerror
            raise _Permanent(f"{domain}: redirect to a malformed name {target!r}")
        result, reason, redirected = await self.check(target)
        if result is Result.NONE:
            raise _Permanent(f"{domain}: redirect={target} has no SPF record")
        return result, reason, redirected

    def _count_term(self) -> None:
        self._terms += 1
        if self._terms > MAX_DNS_TERMS:
            raise _Permanent(f"more than {MAX_DNS_TERMS} DNS-querying terms")

    def _void(self, answer: list[T]) -> list[T]:
        if not answer:
            self._voids += 1
            if self._voids > MAX_VOID_LOOKUPS:
                raise _Permanent(f"more than {MAX_VOID_LOOKUPS} void lookups")
        return answer

    async def _target(self, spec: tuple[Piece, ...] | None, domain: str) -> str:
        """The <target-name> (§4.8): the expanded domain-spec, or the current domain."""
        if spec is None:
            return domain
        return trim_name(await self._expand(spec, domain))

    async def _expand(self, pieces: tuple[Piece, ...], domain: str) -> str:
        validated = "unknown"
        if needs_validated_name(pieces):
            if domain not in self._validated:
                self._count_term()  # §4.6.4: %{p} queries PTR as the ptr mechanism does
                self._validated[domain] = await self._validated_name(domain)
            validated = self._validated[domain]
        return expand(pieces, MacroValues(self._sender, domain, self._ip, self._helo,
                                          self._receiver, validated))

    async def _matches(self, directive: Directive, domain: str) -> bool:
        mechanism = directive.mechanism
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            assert directive.network is not None
            return (directive.network.version == self._ip.version
                    and self._ip in directive.network)
        assert mechanism in DNS_MECHANISMS
        self._count_term()
        target = await self._target(directive.domain_spec, domain)
        if mechanism == "include":
            return await self._include(target)
        if mechanism == "exists":  # §5.7: an A query whatever the client's address
            return bool(self._void(await self._ask(self._dns.a, target)))
        if mechanism == "ptr":
            names = await self._validated_names()
            return any(_within(name, target) for name in names)
        cidr = directive.cidr4 if self._ip.version == 4 else directive.cidr6
        if mechanism == "a":
            return self._any_within(self._void(await self._addresses(target)), cidr)
        exchanges = [name for _, name in self._void(await self._ask(self._dns.mx, target))]
        if len(exchanges) > MAX_NAMES:  # §4.6.4: more than ten MX names is permerror
            raise _Permanent(f"{target}: more than {MAX_NAMES} MX records")
        found = await _gather(self._addresses(name) for name in exchanges if name)
        return any(self._any_within(addresses, cidr) for addresses in found)

    async def _include(self, target: str) -> bool:
        """§5.2: pass matches; fail, softfail and neutral do not; none is permerror;
        temperror and permerror end the whole evaluation (raised from below)."""
        if not valid_domain(target):
            raise _Permanent(f"include of a malformed name {target!r}")
        result, _, _ = await self.check(target)
        if result is Result.NONE:
            raise _Permanent(f"include:{target} has no SPF record")
        return result is Result.PASS

    async def _ask(self, lookup: _Lookup[T], name: str) -> list[T]:
        """A lookup of a name DNS can carry; any other name has nothing (a void lookup)."""
        name = name.removesuffix(".")
        return await lookup(name) if askable(name) else []

    async def _addresses(self, name: str) -> list[str]:
        """§5.3: A records for an IPv4 client, AAAA for an IPv6 one."""
        return await self._ask(self._dns.a if self._ip.version == 4 else self._dns.aaaa, name)

    def _any_within(self, addresses: Iterable[str], cidr: int) -> bool:
        for address in addresses:
            try:
                network = ipaddress.ip_network(f"{address}/{cidr}", strict=False)
            except ValueError:
                continue
            if network.version == self._ip.version and self._ip in network:
                return True
        return False

    async def _validated_names(self) -> list[str]:
        """§5.5: the client's PTR names (the first ten) whose own addresses include it. A
        DNS error on the PTR lookup matches nothing; on a name's lookup skips that name."""
        try:
            names = self._void(await self._dns.ptr(str(self._ip)))[:MAX_NAMES]
        except DnsFailure:
            return []
        found = await asyncio.gather(*(self._confirms(name) for name in names))
        return [name for name, confirmed in zip(names, found, strict=True) if confirmed]

    async def _confirms(self, name: str) -> bool:
        try:
            return self._any_within(await self._addresses(name), self._ip.max_prefixlen)
        except DnsFailure:
            return False

    async def _validated_name(self, domain: str) -> str:
        """%{p} (§7.3): a validated name, the domain itself or a subdomain preferred."""
        names = await self._validated_names()
        for preferred in ([n for n in names if n.lower() == domain.lower()],
                          [n for n in names if _within(n, domain)], names):
            if preferred:
                return preferred[0]
        return "unknown"

    async def explanation(self, record: Record, domain: str) -> str:
        """§6.2: the exp= TXT record, expanded; "" when there is none or it cannot be used."""
        if record.explanation is None:
            return ""
        try:
            target = await self._target(record.explanation, domain)
            texts = await self._ask(self._dns.txt, target)
            if len(texts) != 1 or len(texts[0]) > PARSED_ON_THE_LOOP:
                return ""
            pieces = parse_macro_string(texts[0], EXPLANATION_LETTERS, allow_space=True)
            text = await self._expand(pieces, domain)
        except (DnsFailure, SpfSyntaxError, _Permanent):
            return ""
        printable = "".join(c if 0x20 <= ord(c) <= 0x7E else "?" for c in text)
        return printable[:MAX_EXPLANATION]


class _Lookup(Protocol[T]):
    def __call__(self, name: str, /) -> Awaitable[list[T]]: ...


async def _gather(lookups: Iterable[Awaitable[list[str]]]) -> list[list[str]]:
    """The lookups at once; all of them end before the first failure is raised, so none
    outlives the evaluation."""
    answers = await asyncio.gather(*lookups, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [answer for answer in answers if not isinstance(answer, BaseException)]


def _within(name: str, domain: str) -> bool:
    """`name` is `domain` or one of its subdomains (§5.5), ignoring case and a final dot."""
    name, domain = name.lower().removesuffix("."), domain.lower().removesuffix(".")
    return name == domain or name.endswith("." + domain)


def _client_address(ip: str) -> Address | None:
    """The client's address, without a zone (fe80::1%eth0); an IPv4-mapped IPv6 address "MUST
    still be considered an IPv4 address" (§5)."""
    text = ip.strip().removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


async def check_host(ip: str, domain: str, sender: str, *, dns: AsyncDns, helo: str = "",
                     receiver: str = "", budget: float = BUDGET_SECONDS) -> SpfVerdict:
    """RFC 7208 §4: the SPF result for client `ip` sending as `sender` for `domain`."""
    domain = domain.strip().removesuffix(".")
    if not valid_domain(domain):  # §4.3
        return SpfVerdict(Result.NONE, domain, reason="not a domain name")
    address = _client_address(ip)
    if address is None:
        return SpfVerdict(Result.PERMERROR, domain, reason=f"not an IP address: {ip!r}")
    local, at, sender_domain = sender.rpartition("@")
    if not at:
        sender_domain = sender or domain
    # §4.3: a sender without a local-part is postmaster at its domain.
    sender = f"{local or 'postmaster'}@{sender_domain or domain}"
    evaluation = _Evaluation(dns, address, sender, helo, receiver)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    try:
        async with asyncio.timeout_at(deadline):
            result, reason, record = await evaluation.check(domain)
    except TimeoutError:
        return SpfVerdict(Result.TEMPERROR, domain, reason=f"no verdict within {budget:g} s")
    except DnsFailure as exc:
        return SpfVerdict(Result.TEMPERROR, domain, reason=f"DNS: {exc}")
    except _Permanent as exc:
        return SpfVerdict(Result.PERMERROR, domain, reason=str(exc))
    if result is Result.FAIL and record is not None and loop.time() < deadline:
        # §6.2: fetched after the verdict, outside the term limits, inside the budget.
        try:
            async with asyncio.timeout_at(deadline):
                explained = await evaluation.explanation(record, domain)
        except TimeoutError:
            explained = ""
        if explained:
            reason = f"{reason}; explanation: {explained}"
    return SpfVerdict(result, domain, reason=reason)


async def check_session(ip: str, helo: str, mail_from: str, *, dns: AsyncDns,
                        receiver: str, budget: float = BUDGET_SECONDS
                        ) -> tuple[SpfVerdict | None, SpfVerdict]:
    """The HELO identity's verdict (§2.3; None when HELO is not a domain name) and the
    MAIL FROM identity's (§2.4), both evaluated at once, each within `budget`. For an
    empty MAIL FROM (a bounce) the MAIL FROM verdict is the HELO identity's,
    postmaster@HELO, scope "helo"."""
    helo_name = helo.strip().removesuffix(".")
    sender = mail_from.strip().removeprefix("<").removesuffix(">")

    async def helo_verdict() -> SpfVerdict:
        verdict = await check_host(ip, helo_name, f"postmaster@{helo_name}", dns=dns,
                                   helo=helo_name, receiver=receiver, budget=budget)
        return dataclasses.replace(verdict, scope="helo")

    helo_is_domain = valid_domain(helo_name)
    if not sender:
        if not helo_is_domain:
            return None, SpfVerdict(Result.NONE, helo_name, "helo", "HELO is not a domain name")
        verdict = await helo_verdict()
        return verdict, verdict
    mail_verdict = check_host(ip, sender.rpartition("@")[2], sender, dns=dns,
                              helo=helo_name, receiver=receiver, budget=budget)
    if not helo_is_domain:
        return None, await mail_verdict
    helo_result, mail_result = await asyncio.gather(helo_verdict(), mail_verdict)
    return helo_result, mail_result
