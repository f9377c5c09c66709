"""Verification of what arrives on the MX port (issue 28): the verdict decides whether the
message is refused at the end of DATA (550 5.7.26, so no backscatter), and the stored bytes
begin with our one Authentication-Results field, any incoming field claiming our
authserv-id removed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import dns.resolver
from aws_lambda_powertools import Logger

from edge.smtp import replies
from mailcore.authentication.dkim_verify import OffLoop
from mailcore.authentication.dns import AsyncDns
from mailcore.authentication.results_header import remove_our_results, results_header
from mailcore.authentication.verify import VERIFY_SECONDS, verify_message
from mailcore.domain.verdict import Disposition, Verdict
from mailcore.services.recipients import HostedDomains

logger = Logger(child=True)

# "off" turns verification off (the benchmark's baseline); anything else, or unset: on.
VERIFY_VARIABLE = "MAILPIPE_VERIFY"
RESOLVER_CACHE_ENTRIES = 10_000  # a few MiB at most
# dkimpy holds about 3.6 copies of a message while it verifies it (a 25 MiB message: 91 MiB
# at its peak, tracemalloc). At most this many bytes of messages are verified at once, so
# that beside the DATA budget (128 MiB) the SMTP container's 448 MiB still holds.
VERIFY_MEMORY_BUDGET = 32 * 1024 * 1024


# "No such record" is kept this long at most (RFC 2308 lets a resolver keep it for the
# zone's negative TTL, commonly 300-3600 s): long enough that the names most senders
# lack (their HELO name's SPF, a DMARC record) cost one lookup per sender and burst, not
# one per message (0.56 ms of dnspython's CPU each, bench/edge_verification.py), short
# enough that a key or policy published a moment ago counts within half a minute.
NEGATIVE_ANSWER_SECONDS = 30.0


class AnswerCache(dns.resolver.LRUCache):
    """dnspython's cache of answers for their TTL, "no such record" for at most
    `negative_seconds` (dnspython keeps it 300 s when the server sends no SOA)."""

    def __init__(self, max_size: int, negative_seconds: float = NEGATIVE_ANSWER_SECONDS
                 ) -> None:
        super().__init__(max_size)
        self._negative_seconds = negative_seconds

    def put(self, key: Any, value: Any) -> None:
        if getattr(value, "rrset", None) is None:
            if self._negative_seconds <= 0:
                return
            value.expiration = min(value.expiration, time.time() + self._negative_seconds)
        super().put(key, value)


def edge_dns(environ: Mapping[str, str],
             negative_seconds: float = NEGATIVE_ANSWER_SECONDS) -> AsyncDns:
    """The edge's one asynchronous resolver, asking MAILPIPE_DNS (or the system's): what
    verification and the blocklists (edge/smtp/junk_signals.py) both ask."""
    from mailcore.adapters.dns_resolver import (
        DNS_SERVER_VARIABLE,
        DnsServer,
        ResolverDns,
        async_resolver,
    )

    server = DnsServer.parse(environ.get(DNS_SERVER_VARIABLE))
    resolver = async_resolver(server)
    # Answers are kept for their TTL, as an MTA's caching resolver keeps them: a sender
    # who sends again costs no lookup (bench/edge_verification.py: 4 per message).
    resolver.cache = AnswerCache(RESOLVER_CACHE_ENTRIES, negative_seconds)
    logger.info("edge resolver", dns=str(server or "system"))
    return ResolverDns(resolver)


class BytesAtOnce:
    """A budget of bytes held at once: a holder waits until its size fits (one larger than
    the whole budget waits until it is alone)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.held = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def holding(self, size: int) -> AsyncIterator[None]:
        size = min(size, self._limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self.held + size <= self._limit)
            self.held += size
        try:
            yield
        finally:
            async with self._changed:
                self.held -= size
                self._changed.notify_all()


@dataclass(frozen=True)
class Judgement:
    refusal: str | None  # the reply when the message is refused
    results: bytes = b""  # our Authentication-Results field, to go first
    original: bytes = b""  # the message as received, incoming claims of our id removed
    verdict: Verdict | None = None


class InboundVerifier:
    """One per edge process: the stack's resolver, our domains and our authserv-id."""

    def __init__(self, dns: AsyncDns, domains: HostedDomains, authserv_id: str,
                 budget: float = VERIFY_SECONDS,
                 sample: Callable[[], float] = random.random) -> None:
        self._dns = dns
        self._domains = domains
        self.authserv_id = authserv_id
        self._budget = budget
        self._sample = sample
        self._memory = BytesAtOnce(VERIFY_MEMORY_BUDGET)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], authserv_id: str,
                     domains: HostedDomains,
                     negative_seconds: float = NEGATIVE_ANSWER_SECONDS,
                     dns: AsyncDns | None = None) -> InboundVerifier | None:
        """None when MAILPIPE_VERIFY=off; else asking `dns` (the edge's one resolver, else
        one made by edge_dns), the public suffix list loaded now rather than by the first
        message."""
        if environ.get(VERIFY_VARIABLE, "").strip().lower() == "off":
            logger.warning("inbound verification is off", variable=VERIFY_VARIABLE)
            return None

        from mailcore.authentication.dmarc import load_public_suffixes

        dns = dns if dns is not None else edge_dns(environ, negative_seconds)
        load_public_suffixes()
        logger.info("inbound verification on", authserv_id=authserv_id)
        return cls(dns, domains, authserv_id)

    async def judge(self, original: bytes, *, peer_ip: str, helo: str, mail_from: str,
                    off_loop: OffLoop) -> Judgement:
        stripped = await off_loop(remove_our_results, original, self.authserv_id)
        try:
            async with self._memory.holding(len(original)):
                verdict = await verify_message(
                    original, peer_ip=peer_ip, helo=helo, mail_from=mail_from, dns=self._dns,
                    off_loop=off_loop, hosted_domains=self._domains.names,
                    receiver=self.authserv_id, budget=self._budget, sample=self._sample)
        except Exception:
            # A fault of ours loses no mail: the message is taken unverified, with our one
            # field saying so (RFC 8601 §2.2: "none", nothing was verified) and none
            # claiming to be ours left.
            logger.exception("verification failed", peer=peer_ip)
            return Judgement(None, f"Authentication-Results: {self.authserv_id}; none\r\n"
                             .encode(), stripped, None)
        _log(verdict, peer_ip)
        if verdict.disposition is Disposition.REJECT:
            return Judgement(replies.DMARC_REFUSED, verdict=verdict)
        return Judgement(None, results_header(self.authserv_id, verdict), stripped, verdict)


def _log(verdict: Verdict, peer: str) -> None:
    dmarc = verdict.dmarc
    logger.info(
        "message verified", peer=peer, disposition=str(verdict.disposition),
        spf=f"{verdict.spf.result} {verdict.spf.domain}",
        helo_spf=None if verdict.helo_spf is None else str(verdict.helo_spf.result),
        dkim=[f"{s.result} d={s.domain} s={s.selector} a={s.algorithm}" for s in verdict.dkim],
        dmarc=None if dmarc is None else f"{dmarc.result} {dmarc.from_domain} p={dmarc.policy}",
        claims_hosted_domain=verdict.claims_hosted_domain, notes=list(verdict.notes))

