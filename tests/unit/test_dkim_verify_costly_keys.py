"""A key record that makes each verification cost seconds of Python (issue 28 review): an
RSA key with a huge public exponent or modulus. dkimpy verifies any size, in pure Python,
in a thread the verification budget cannot stop; such a key is refused unused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

from mailcore.authentication.dkim_verify import verify_dkim
from mailcore.authentication.dns import AsyncDns
from mailcore.domain.verdict import Result


def _key_record(modulus_bits: int, exponent_bits: int) -> str:
    modulus = secrets.randbits(modulus_bits) | (1 << (modulus_bits - 1)) | 1
    exponent = secrets.randbits(exponent_bits) | (1 << (exponent_bits - 1)) | 1
    spki = RSAPublicNumbers(exponent, modulus).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


class OneRecord(AsyncDns):
    def __init__(self, record: str) -> None:
        self._record = record

    async def txt(self, name: str) -> list[str]:
        return [self._record]


async def _in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def _signed_message(signatures: int, modulus_bits: int) -> bytes:
    body = b"Hello Bob.\r\n"
    body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    def b() -> str:
        return base64.b64encode(secrets.token_bytes(modulus_bits // 8)).decode()

    fields = "".join(
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=crepes.fr; s=big;"
        f" h=from; bh={body_hash}; b={b()}\r\n" for _ in range(signatures))
    return (fields + "From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\n\r\n").encode() + body


@pytest.mark.parametrize(("modulus_bits", "exponent_bits"), [(16384, 16000), (8192, 8000)])
def test_a_costly_rsa_key_is_refused_without_seconds_of_work(modulus_bits: int,
                                                            exponent_bits: int) -> None:
    dns = OneRecord(_key_record(modulus_bits, exponent_bits))
    started = time.process_time()
    verdicts = asyncio.run(verify_dkim(_signed_message(3, modulus_bits), dns=dns,
                                       off_loop=_in_thread))
    spent = time.process_time() - started
    assert [v.result for v in verdicts] == [Result.PERMERROR] * 3
    assert spent < 1.0, spent


def test_thousands_of_signatures_give_a_bounded_verdict_and_field() -> None:
    from mailcore.authentication.results_header import results_header
    from mailcore.domain.verdict import SpfVerdict, Verdict

    # GIVEN a 1.5 MB message of 20000 DKIM-Signature fields, each of another domain
    raw = b"".join(b"DKIM-Signature: v=1; a=rsa-sha256; d=x%d.example; s=s; h=from;"
                   b" bh=AA; b=AA\r\n" % index for index in range(20000))
    raw += b"From: a@b.example\r\n\r\nbody\r\n"
    verdicts = asyncio.run(verify_dkim(raw, dns=OneRecord(""), off_loop=_in_thread))
    field = results_header("mx.hamburger.edu", Verdict(
        spf=SpfVerdict(Result.NONE, "b.example"), dkim=verdicts))
    # THEN what is kept of it (the envelope's verdict, our field, written on the event
    # loop) is about what ten signatures make, not 3 MB
    assert len(verdicts) <= 11 and len(field) < 4096, (len(verdicts), len(field))


def test_huge_d_and_s_values_and_from_domains_give_a_bounded_field() -> None:
    from mailcore.authentication.dmarc import from_domains
    from mailcore.authentication.results_header import results_header
    from mailcore.domain.verdict import DmarcVerdict, SpfVerdict, Verdict

    # GIVEN one signature whose d= and s= are each 1 MB (folded), and a 1 MB From domain
    huge = "\r\n\t".join(["a" * 70] * 15_000)
    raw = (f"DKIM-Signature: v=1; a=rsa-sha256; d={huge}; s={huge}; h=from; bh=AA; b=AA\r\n"
           f"From: ceo@{huge.replace(chr(13) + chr(10) + chr(9), '')}.example\r\n\r\nHi\r\n"
           ).encode()
    verdicts = asyncio.run(verify_dkim(raw, dns=OneRecord(""), off_loop=_in_thread))
    domains = from_domains(raw)
    started = time.process_time()
    field = results_header("mx.hamburger.edu", Verdict(
        spf=SpfVerdict(Result.NONE, "b.example"), dkim=verdicts,
        dmarc=DmarcVerdict(Result.NONE, domains[0] if domains else "")))
    # THEN our field (written on the event loop) stays the size of a few domain names
    assert len(field) < 4096 and time.process_time() - started < 0.1, len(field)
