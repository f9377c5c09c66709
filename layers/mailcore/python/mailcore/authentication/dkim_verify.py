"""DKIM verification (RFC 6376, ed25519-sha256 per RFC 8463) of every signature of a
message, each by its index, with dkimpy.

dkimpy's own asynchronous path checks the first signature only and canonicalises and hashes
inside the coroutine, so the work is split three ways: the signature fields are read off the
event loop (`off_loop`), the keys are fetched on the loop through AsyncDns (concurrently,
each lookup within the resolver's budget), and dkimpy's synchronous `DKIM.verify(idx=i)`
then runs off the loop against the prefetched answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mailcore.authentication.dns import AsyncDns, DnsFailure
from mailcore.domain.verdict import DkimVerdict, Result

# Runs a blocking function in a thread: `await off_loop(function, *args)`.
OffLoop = Callable[..., Awaitable[Any]]

# Signatures checked per message; the rest are reported neutral, unchecked. Each costs a
# key lookup and a pass of canonicalisation and hashing, and a sender has no reason to add
# more than a few (we add two), so this bounds what one message can make us do.
MAX_SIGNATURES = 10
# dkimpy finds each field h= names by walking the header section from the bottom
# (select_headers): names x fields steps of Python, in a thread that a timeout does not
# stop. 5000 absent names over 5000 fields took 2 s a signature, and the work doubles
# fourfold with each doubling. Signers name a dozen fields, oversigners a few dozen;
# a section of more fields than this is a list of Received fields no mail system writes.
MAX_SIGNED_FIELDS = 100
MAX_NAME = 255  # of d=, s= and a= as reported
MAX_HEADER_FIELDS = 1000
# RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits; rsa-sha1 is gone (§3.1).
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT_BITS = 32
ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
_KEY_TYPES = {"rsa-sha256": b"rsa", "ed25519-sha256": b"ed25519"}


@dataclass
class _Signature:
    index: int
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    header_b: str = ""
    problem: str = ""  # set when the fields alone make it a permerror

    @property
    def key_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def verdict(self, result: Result, reason: str = "") -> DkimVerdict:
        return DkimVerdict(result, self.domain, self.selector, self.algorithm, self.header_b,
                           reason)


@dataclass
class _Parsed:
    signer: Any = None  # the dkim.DKIM holding the parsed message
    signatures: list[_Signature] = field(default_factory=list)
    unchecked: list[_Signature] = field(default_factory=list)  # the first beyond the most
    more: int = 0  # signatures beyond MAX_SIGNATURES


async def verify_dkim(raw: bytes, *, dns: AsyncDns, off_loop: OffLoop
                      ) -> tuple[DkimVerdict, ...]:
    """One verdict per DKIM-Signature field, in header order (none for an unsigned
    message)."""
    parsed: _Parsed = await off_loop(_parse, raw)
    names = sorted({s.key_name for s in parsed.signatures if not s.problem})
    answers = dict(zip(names, await asyncio.gather(*(_key_records(dns, n) for n in names)),
                       strict=True))
    checked: list[DkimVerdict] = await off_loop(_verify_all, parsed, answers)
    # The rest are one verdict, not one each: 20000 signatures made a 2.3 MB field (and
    # envelope) of clauses that say nothing.
    return (*checked, *(s.verdict(Result.NEUTRAL, f"not checked: {parsed.more} more over "
                                  f"{MAX_SIGNATURES}") for s in parsed.unchecked[:1]))


async def _key_records(dns: AsyncDns, name: str) -> list[str] | DnsFailure:
    try:
        return await dns.txt(name)
    except DnsFailure as failure:
        return failure


def _parse(raw: bytes) -> _Parsed:
    import dkim

    try:
        signer = dkim.DKIM(raw, minkey=MIN_RSA_BITS)
    except dkim.DKIMException:
        return _Parsed()  # not a message dkimpy can read: nothing to verify
    values = [value for name, value in signer.headers if name.lower() == b"dkim-signature"]
    signatures = [_signature(index, value)
                  for index, value in enumerate(values[:MAX_SIGNATURES + 1])]
    if len(signer.headers) > MAX_HEADER_FIELDS:
        for signature in signatures:
            signature.problem = f"over {MAX_HEADER_FIELDS} header fields: not checked"
    return _Parsed(signer, signatures[:MAX_SIGNATURES], signatures[MAX_SIGNATURES:],
                   more=max(len(values) - MAX_SIGNATURES, 0))


def _signature(index: int, value: bytes) -> _Signature:
    import dkim

    signature = _Signature(index)
    try:
        tags = dkim.util.parse_tag_value(value)
    except dkim.util.InvalidTagValueList as error:
        signature.problem = f"unreadable signature: {error}"
        return signature
    text = {name.decode("ascii", "replace"): tag.decode("ascii", "replace")
            for name, tag in tags.items()}
    # Shown in our Authentication-Results field and kept in the envelope, whatever they
    # are: a name's length at most (a longer one is no name, and the check below says so).
    signature.domain = text.get("d", "").strip().lower().rstrip(".")[:MAX_NAME]
    signature.selector = text.get("s", "").strip().lower()[:MAX_NAME]
    signature.algorithm = text.get("a", "").strip().lower()[:MAX_NAME]
    signature.header_b = re.sub(r"\s+", "", text.get("b", ""))[:8]
    try:
        dkim.validate_signature_fields(tags)
    except dkim.ValidationError as error:
        signature.problem = str(error)
        return signature
    named = text.get("h", "").split(":")
    if len(named) > MAX_SIGNED_FIELDS:
        signature.problem = f"h= names over {MAX_SIGNED_FIELDS} fields: not checked"
        return signature
    signed = {name.strip().lower() for name in named}
    identity = text.get("i", "").rpartition("@")[2].lower().rstrip(".")
    if signature.algorithm not in ALGORITHMS:
        signature.problem = f"algorithm {signature.algorithm} not accepted (RFC 8301)"
    elif "from" not in signed:
        signature.problem = "From is not signed (RFC 6376 §5.4)"
    elif identity and identity != signature.domain and not identity.endswith(
            "." + signature.domain):
        signature.problem = "i= is not within d= (RFC 6376 §3.5)"
    elif max(len(text.get("d", "").strip()), len(text.get("s", "").strip())) > MAX_NAME:
        signature.problem = "d= or s= longer than a name"  # (reported cut short)
    elif not re.fullmatch(r"[a-z0-9_.-]+", signature.selector + signature.domain):
        signature.problem = "bad d= or s="
    return signature


def _verify_all(parsed: _Parsed, answers: dict[str, list[str] | DnsFailure]
                ) -> list[DkimVerdict]:
    return [_verify_one(parsed.signer, signature, answers) for signature in parsed.signatures]


def _verify_one(signer: Any, signature: _Signature,
                answers: dict[str, list[str] | DnsFailure]) -> DkimVerdict:
    import dkim

    if signature.problem:
        return signature.verdict(Result.PERMERROR, signature.problem)
    records = answers.get(signature.key_name, [])
    if isinstance(records, DnsFailure):
        return signature.verdict(Result.TEMPERROR, f"key lookup: {records}")
    # RFC 6376 §6.1.2: no key record is a permanent failure (RFC 8601 §2.7.1: permerror).
    # Several records at one name are undefined (§3.6.2.2): the first that parses is used.
    key_record = _first_key(records)
    if key_record is None:
        return signature.verdict(Result.PERMERROR, f"no key at {signature.key_name}")
    key_type = key_record[1]
    if key_type != _KEY_TYPES[signature.algorithm]:
        return signature.verdict(Result.PERMERROR, "key type does not match a=")
    costly = _costly_rsa_key(key_record[0]) if key_type == b"rsa" else None
    if costly is not None:
        return signature.verdict(Result.PERMERROR, costly)

    def prefetched(name: bytes | str, timeout: float = 0) -> bytes:
        return key_record[0]

    signer.pk = None
    try:
        valid = signer.verify(idx=signature.index, dnsfunc=prefetched)
    except dkim.ValidationError as error:  # the body hash differs: the body was changed
        return signature.verdict(Result.FAIL, str(error).partition(" (")[0][:100])
    except dkim.DKIMException as error:  # a malformed c=, bh=, key too small, ...
        return signature.verdict(Result.PERMERROR, str(error)[:100])
    except Exception as error:  # noqa: BLE001 (a library fault is ours, never the sender's)
        return signature.verdict(Result.TEMPERROR, f"verifier error: {type(error).__name__}")
    if valid:
        return signature.verdict(Result.PASS)
    if signer.pk is None:  # dkimpy could not read the key (it says so only in its log)
        return signature.verdict(Result.PERMERROR, f"unusable key at {signature.key_name}")
    return signature.verdict(Result.FAIL, "signature does not verify")


def _costly_rsa_key(record: bytes) -> str | None:
    """Why the RSA key would cost too much to verify with, or None. dkimpy verifies with
    any key, in Python: a 16384-bit exponent over a 16384-bit modulus took 8 s a signature.
    Keys use e=65537 (RFC 8017 recommends small exponents) and RFC 8301 §3.2 asks
    verifiers for 1024 to 4096 bits; beyond 8192, or with an exponent past 32 bits, no."""
    import base64
    import binascii

    import dkim
    import dkim.crypto

    try:
        data = base64.b64decode(dkim.util.parse_tag_value(record).get(b"p", b""))
        key = dkim.crypto.parse_public_key(data)
    except (binascii.Error, ValueError, dkim.DKIMException, dkim.util.InvalidTagValueList,
            dkim.crypto.UnparsableKeyError, dkim.asn1.ASN1FormatError, IndexError, TypeError):
        return None  # unreadable: dkimpy says so in its own way (no pk)
    if key["modulus"].bit_length() > MAX_RSA_BITS:
        return f"RSA key over {MAX_RSA_BITS} bits"
    if key["publicExponent"].bit_length() > MAX_RSA_EXPONENT_BITS:
        return f"RSA public exponent over {MAX_RSA_EXPONENT_BITS} bits"
    return None


def _first_key(records: list[str]) -> tuple[bytes, bytes] | None:
    """(the record, its k= key type) of the first record that names a key; dkimpy parses
    the key itself when it verifies (once: a bad one leaves its `pk` unset)."""
    import dkim

    for record in records:
        try:
            data = record.encode("ascii")
            tags = dkim.util.parse_tag_value(data)
        except (dkim.util.InvalidTagValueList, UnicodeError, ValueError):
            continue
        if tags.get(b"p"):  # an empty p= is a revoked key (RFC 6376 §3.6.1)
            return data, tags.get(b"k", b"rsa")
    return None
