"""How many DNS questions one message can make the MX edge ask (issue 28 review): a From
with hundreds of addresses, each of another domain, must not become hundreds of DMARC
lookups (a query amplifier pointed wherever the sender likes)."""

from __future__ import annotations

import asyncio

from mailcore.authentication.dmarc import check_dmarc, from_domains
from mailcore.domain.verdict import Disposition, Result, SpfVerdict


class CountingDns:
    def __init__(self) -> None:
        self.questions = 0

    async def txt(self, name: str) -> list[str]:
        self.questions += 1
        return []


def test_a_from_of_300_domains_asks_a_bounded_number_of_questions() -> None:
    authors = ", ".join(f"a@d{index}.victim-zone.example" for index in range(300))
    raw = f"From: {authors}\r\nTo: bob@hamburger.edu\r\n\r\nHi\r\n".encode()
    dns = CountingDns()
    verdict = asyncio.run(check_dmarc(from_domains(raw), spf=SpfVerdict(Result.NONE, ""),
                                      dkim=(), dns=dns))  # type: ignore[arg-type]
    assert dns.questions <= 20, dns.questions
    assert verdict.result is not Result.PASS and verdict.disposition is Disposition.QUARANTINE
