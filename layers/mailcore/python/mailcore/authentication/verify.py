"""The verdict on one message received on the MX port: SPF and DKIM at once, DMARC on
their results, then what the message claims about our own domains; all within one budget.

Every DNS question is asked on the event loop through AsyncDns; parsing and hashing run in
threads through `off_loop`. Nothing here refuses or files a message: the edge does, by the
verdict's disposition.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from mailcore.authentication.dkim_verify import OffLoop, verify_dkim
from mailcore.authentication.dmarc import check_dmarc, from_domains
from mailcore.authentication.dns import AsyncDns
from mailcore.domain.verdict import (
    Disposition,
    DkimVerdict,
    DmarcVerdict,
    Result,
    SpfVerdict,
    Verdict,
)

# The whole verification of one message. An SPF include chain asks in sequence (up to 10
# DNS-querying terms, RFC 7208 §4.6.4) and DMARC asks after SPF and DKIM, so this is a few
# lookups' budgets (3 s each): what a slow zone may add to a DATA reply, never more.
VERIFY_SECONDS = 12.0
# What DMARC gets at least, even when SPF and DKIM used up the rest.
_DMARC_FLOOR_SECONDS = 1.0

T = TypeVar("T")
SpfCheck = Callable[..., Awaitable[tuple[SpfVerdict | None, SpfVerdict]]]


async def verify_message(
    raw: bytes, *, peer_ip: str, helo: str, mail_from: str, dns: AsyncDns,
    off_loop: OffLoop, hosted_domains: Collection[str], receiver: str,
    budget: float = VERIFY_SECONDS, sample: Callable[[], float] = random.random,
    check_spf: SpfCheck | None = None,
) -> Verdict:
    """`raw` is the message as it arrived (before our trace and results fields);
    `receiver` is our host name (SPF's %{r}, and the authserv-id)."""
    if check_spf is None:
        from mailcore.authentication.spf import check_session

        check_spf = check_session
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    notes: list[str] = []
    spf_task = asyncio.ensure_future(
        check_spf(peer_ip, helo, mail_from, dns=dns, receiver=receiver))
    dkim_task = asyncio.ensure_future(verify_dkim(raw, dns=dns, off_loop=off_loop))
    domains_task = asyncio.ensure_future(off_loop(from_domains, raw))
    await asyncio.wait([spf_task, dkim_task, domains_task], timeout=budget)
    mail_domain = mail_from.rpartition("@")[2].lower() or helo.lower()
    helo_spf, spf = _outcome(spf_task, (None, SpfVerdict(
        Result.TEMPERROR, mail_domain, "mailfrom" if mail_from else "helo",
        "not finished within the budget")), notes, "spf")
    dkim: tuple[DkimVerdict, ...] = _outcome(
        dkim_task, (DkimVerdict(Result.TEMPERROR, "", reason="not finished in time"),),
        notes, "dkim")
    domains: list[str] = _outcome(domains_task, [], notes, "from")
    remaining = max(deadline - loop.time(), _DMARC_FLOOR_SECONDS)
    dmarc_task = asyncio.ensure_future(
        check_dmarc(domains, spf=spf, dkim=dkim, dns=dns, sample=sample))
    await asyncio.wait([dmarc_task], timeout=remaining)
    dmarc = _outcome(dmarc_task, DmarcVerdict(
        Result.TEMPERROR, domains[0] if domains else "", reason="not finished in time"),
        notes, "dmarc")
    hosted = {name.lower() for name in hosted_domains}
    claims_hosted = any(domain in hosted for domain in domains) and (
        dmarc.result is not Result.PASS)
    if claims_hosted:
        dmarc = _hosted_claim(dmarc, hosted)
    return Verdict(spf=spf, dkim=dkim, dmarc=dmarc, helo_spf=helo_spf,
                   claims_hosted_domain=claims_hosted, notes=tuple(notes))


def _outcome(task: asyncio.Future[Any], fallback: T, notes: list[str], name: str) -> T:
    """The task's result, or `fallback` (a temperror) when it did not finish in time or
    failed: a fault of ours is never held against the message."""
    if not task.done():
        task.cancel()
        notes.append(f"{name}: not finished within the budget")
        return fallback
    error = task.exception()
    if error is not None:
        notes.append(f"{name}: {type(error).__name__}: {error}"[:200])
        return fallback
    result: T = task.result()
    return result


def _hosted_claim(dmarc: DmarcVerdict, hosted: set[str]) -> DmarcVerdict:
    """From claims one of our domains and DMARC did not pass (issue 28): refused where our
    own published policy is p=reject, else Junk; our domains' mail to our users never
    comes through the MX, so what does is a spoof or a relay (a mailing list) at best."""
    own_reject = (dmarc.from_domain in hosted and dmarc.policy == "reject"
                  and dmarc.result is not Result.TEMPERROR)  # never refused for a DNS fault
    disposition = Disposition.REJECT if own_reject else Disposition.QUARANTINE
    if dmarc.disposition is Disposition.REJECT:
        disposition = Disposition.REJECT
    return DmarcVerdict(dmarc.result, dmarc.from_domain, dmarc.policy, disposition,
                        dmarc.reason)
