"""DKIM verification of every signature by its index, and the whole verification's budget:
signatures made here with dkimpy and keys from signing_keys, their key records answered by
a table (the edge's functional tests ask a real dnsmasq)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import dkim

from mailcore.authentication.dkim_verify import MAX_SIGNATURES, verify_dkim
from mailcore.authentication.dns import DnsFailure
from mailcore.authentication.signing_keys import ED25519, RSA, new_keys
from mailcore.authentication.verify import verify_message
from mailcore.domain.verdict import Result

KEYS = {key.algorithm: key for key in new_keys("crepes.fr", date(2026, 12, 7))}
MESSAGE = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: s\r\n\r\n"
           + b"body line\r\n" * 50)


class TableDns:
    def __init__(self, txt: dict[str, list[str]], stall: bool = False) -> None:
        self.records, self.stall = txt, stall
        self.asked: list[str] = []

    async def txt(self, name: str) -> list[str]:
        self.asked.append(name)
        if self.stall:
            await asyncio.sleep(3600)
        if ".fail." in name:
            raise DnsFailure(name)
        return self.records.get(name, [])

    async def a(self, name: str) -> list[str]:
        if self.stall:
            await asyncio.sleep(3600)
        return []

    aaaa = a

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return []

    async def ptr(self, address: str) -> list[str]:
        return []


async def _threaded(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def _sign(raw: bytes, algorithm: str, domain: str = "crepes.fr", selector: str = "") -> bytes:
    key = KEYS[algorithm]
    return dkim.sign(raw, (selector or key.selector).encode(), domain.encode(),
                     key.private_key.encode(), signature_algorithm=algorithm.encode()) + raw


def _verify(raw: bytes, dns: TableDns) -> list[tuple[Result, str, str]]:
    verdicts = asyncio.run(verify_dkim(raw, dns=dns, off_loop=_threaded))
    return [(verdict.result, verdict.selector, verdict.algorithm) for verdict in verdicts]


PUBLISHED = {key.record_name: [key.txt_record] for key in KEYS.values()}


def test_each_signature_by_its_index() -> None:
    raw = _sign(_sign(_sign(MESSAGE, RSA), ED25519), RSA, selector="unpublished")
    assert _verify(raw, TableDns(PUBLISHED)) == [
        (Result.PERMERROR, "unpublished", RSA),  # no key: RFC 6376 §6.1.2
        (Result.PASS, KEYS[ED25519].selector, ED25519),
        (Result.PASS, KEYS[RSA].selector, RSA),
    ]


def test_a_key_of_the_other_type_an_unusable_key_and_a_dns_failure() -> None:
    raw = _sign(_sign(_sign(MESSAGE, RSA), RSA, selector="broken"), ED25519,
                domain="fail.crepes.fr")
    records = {KEYS[RSA].record_name: [KEYS[ED25519].txt_record],
               "broken._domainkey.crepes.fr": ["v=DKIM1; k=rsa; p=AAAA"]}
    assert [result for result, _, _ in _verify(raw, TableDns(records))] == [
        Result.TEMPERROR, Result.PERMERROR, Result.PERMERROR]


def test_one_lookup_per_key_and_at_most_ten_signatures_checked() -> None:
    raw = MESSAGE
    for _ in range(MAX_SIGNATURES + 2):
        raw = _sign(raw, ED25519)
    dns = TableDns(PUBLISHED)
    results = [result for result, _, _ in _verify(raw, dns)]
    # The two beyond the most are one neutral verdict ("2 more"), not one each.
    assert results == [Result.PASS] * MAX_SIGNATURES + [Result.NEUTRAL]
    assert dns.asked == [KEYS[ED25519].record_name]


def test_the_whole_verification_keeps_its_budget() -> None:
    started = time.perf_counter()
    verdict = asyncio.run(verify_message(
        _sign(MESSAGE, ED25519), peer_ip="192.0.2.1", helo="mail.crepes.fr",
        mail_from="alice@crepes.fr", dns=TableDns(PUBLISHED, stall=True),
        off_loop=_threaded, hosted_domains={"hamburger.edu"}, receiver="mx.hamburger.edu",
        budget=0.3))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.3 + 1.0 + 0.5  # the budget, DMARC's floor, slack
    assert verdict.spf.result is Result.TEMPERROR
    assert [signature.result for signature in verdict.dkim] == [Result.TEMPERROR]
    assert verdict.dmarc is not None and verdict.dmarc.result is Result.TEMPERROR
    assert not verdict.junk and len(verdict.notes) == 3
