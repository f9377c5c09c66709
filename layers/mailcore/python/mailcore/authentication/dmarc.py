"""DMARC (RFC 7489): the From domain's policy, found in DNS, applied to SPF's and DKIM's
results by identifier alignment.

Our own rather than the `dmarc` package: its asynchronous resolver is a module-level
dnspython default (neither our resolver nor a time budget can be given), its organisational
domain comes from publicsuffix2 (a list from 2019), it does not sample by pct=, and its
relaxed alignment accepts a parent domain without asking the public suffix list (a DKIM
d=co.uk would align with From: example.co.uk).
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailcore.authentication.dns import AsyncDns, DnsFailure
from mailcore.domain.verdict import (
    Disposition,
    DkimVerdict,
    DmarcVerdict,
    Result,
    SpfVerdict,
)

POLICIES = {"none": Disposition.DELIVER, "quarantine": Disposition.QUARANTINE,
            "reject": Disposition.REJECT}
# Author domains checked at most (RFC 5322 allows one From field, of several mailboxes).
MAX_FROM_DOMAINS = 10
_STRICTNESS = [Disposition.DELIVER, Disposition.QUARANTINE, Disposition.REJECT]
_OBSOLETE_FROM = re.compile(r"(?im)^from[ \t]+:(.*(?:\r\n[ \t].*)*)")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_TAG = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class DmarcRecord:
    policy: str  # p=: none, quarantine or reject
    subdomain_policy: str = ""  # sp=, "" when absent (then p= applies)
    strict_dkim: bool = False  # adkim=s
    strict_spf: bool = False  # aspf=s
    percent: int = 100  # pct=


@dataclass(frozen=True)
class FoundPolicy:
    record: DmarcRecord
    at_organisational_domain: bool  # found at _dmarc.<org domain>, not at the From domain

    @property
    def applicable(self) -> str:
        """p=, or sp= for a subdomain whose record is the organisational domain's (§6.3)."""
        if self.at_organisational_domain and self.record.subdomain_policy:
            return self.record.subdomain_policy
        return self.record.policy


def parse_record(text: str) -> DmarcRecord | None:
    """The record, or None when `text` is not a DMARC record (§6.6.3: v=DMARC1 first) or
    has no usable p= (with a valid p= but a bad sp=, sp= is ignored)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        match = _TAG.match(part)
        if match is None:
            return None
        tags.setdefault(match[1].lower(), match[2])
    if list(tags)[:1] != ["v"] or tags["v"] != "DMARC1":
        return None
    policy = tags.get("p", "").lower()
    if policy not in POLICIES:
        # §6.6.3: with a rua= the receiver acts as if p=none; without, no DMARC at all.
        if "rua" not in tags:
            return None
        policy = "none"
    subdomain = tags.get("sp", "").lower()
    percent = tags.get("pct", "100")
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain if subdomain in POLICIES else "",
        strict_dkim=tags.get("adkim", "r").lower() == "s",
        strict_spf=tags.get("aspf", "r").lower() == "s",
        percent=min(int(percent), 100) if percent.isdigit() else 100)


@functools.cache
def _public_suffixes() -> Any:
    """publicsuffixlist with the list it ships (never fetched): ~40 ms to load on a busy
    2-core machine, so once per process, and the edge loads it at start."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def load_public_suffixes() -> None:
    _public_suffixes()


def organisational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (a public suffix itself: itself)."""
    domain = domain.lower().rstrip(".")
    return str(_public_suffixes().privatesuffix(domain) or domain)


def aligned(from_domain: str, identifier: str, strict: bool) -> bool:
    """§3.1: strict means the same name, relaxed the same organisational domain."""
    from_domain, identifier = from_domain.lower().rstrip("."), identifier.lower().rstrip(".")
    if not identifier:
        return False
    if from_domain == identifier:
        return True
    return not strict and organisational_domain(from_domain) == organisational_domain(
        identifier)


def from_domains(raw: bytes) -> list[str]:
    """The domains of the RFC5322.From addresses, in order, each once. RFC 7489 §6.6.1:
    with several (one field with several addresses, or several From fields, which RFC 5322
    forbids) each is checked and the strictest failing policy applies; with none there is
    nothing to check (no author domain is shown to the reader either)."""
    import email.parser
    import email.policy
    import email.utils

    end = raw.find(b"\r\n\r\n")  # the header section only: the parser reads every line
    try:
        # Decoded as UTF-8 first (RFC 6532, and how a reader shows them): from bytes,
        # compat32 turns each 8-bit byte of a field into U+FFFD.
        header = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(
            (raw if end < 0 else raw[:end + 2]).decode("utf-8", "replace"))
        values = [str(value) for value in header.get_all("From") or []]
    except (ValueError, TypeError, LookupError):
        return []
    # RFC 5322 §4.5.1's obsolete syntax, white space before the colon ("From : ..."), is
    # no From to the parser, yet readers show it as one (as fields_named reads it).
    block = (raw if end < 0 else raw[:end + 2]).decode("utf-8", "replace")
    values += [match[1].replace("\r\n", "") for match in _OBSOLETE_FROM.finditer(block)]
    # Read as the verifier's parser (compat32) and as the one whose result the folder list
    # and IMAP show (email.policy.default): "From: ceo@ours.example x@theirs.example" is
    # theirs to getaddresses and ours to the list, so both domains are the author's.
    addresses = [address for _, address in email.utils.getaddresses(values)]
    for value in values:
        try:
            parsed = email.policy.default.header_factory("From", value)
            addresses.extend(str(each.addr_spec) for each in parsed.addresses)
        except (ValueError, TypeError, LookupError, AttributeError, IndexError,
                RecursionError):
            continue
    domains: list[str] = []
    for address in addresses:
        written = address.rpartition("@")[2].strip().lower().rstrip(".")
        if "@" not in address or not written:
            continue
        domain = _host_name(written[:1024])  # (a name is 253 at most; a few invisibles)
        if domain is None or len(domain) > 253 or not _HOST_NAME.fullmatch(domain):
            continue  # a parser's leftovers: no DMARC record there
        if domain not in domains:
            domains.append(domain)
    return domains


def _host_name(domain: str) -> str | None:
    """The domain as an A-label name, as a reader sees it: characters no one sees (controls,
    format characters such as U+200B, U+202E, U+FEFF) left out, so that "ours.example"
    followed by one of them is still ours.example to DMARC and to the hosted-domain check."""
    import unicodedata

    domain = re.sub("[\u3002\uff0e\uff61]", ".", domain)  # IDNA's other full stops
    seen = "".join(char for char in unicodedata.normalize("NFKC", domain)
                   if unicodedata.category(char)[0] in "LNM" or char in ".-_").strip(".")
    try:
        return seen.encode("idna").decode("ascii").lower() or None
    except UnicodeError:
        return None


async def discover(from_domain: str, dns: AsyncDns) -> FoundPolicy | None:
    """§6.6.3: the record at _dmarc.<From domain>, else at _dmarc.<organisational domain>;
    None when there is none (or several). DnsFailure propagates: temperror."""
    record = await _record_at(from_domain, dns)
    if record is not None:
        return FoundPolicy(record, at_organisational_domain=False)
    organisational = organisational_domain(from_domain)
    if organisational == from_domain:
        return None
    record = await _record_at(organisational, dns)
    return None if record is None else FoundPolicy(record, at_organisational_domain=True)


async def _record_at(domain: str, dns: AsyncDns) -> DmarcRecord | None:
    records = [record for record in map(parse_record, await dns.txt(f"_dmarc.{domain}"))
               if record is not None]
    return records[0] if len(records) == 1 else None  # several: no DMARC (§6.6.3 step 5)


def evaluate(from_domain: str, found: FoundPolicy | None, spf: SpfVerdict,
             dkim: Sequence[DkimVerdict], sample: Callable[[], float] = random.random
             ) -> DmarcVerdict:
    """The verdict for one From domain under its found policy. `sample` gives [0, 1)."""
    if found is None:
        return DmarcVerdict(Result.NONE, from_domain, reason="no DMARC record")
    record, policy = found.record, found.applicable
    spf_aligned = spf.result is Result.PASS and aligned(from_domain, spf.domain,
                                                        record.strict_spf)
    dkim_aligned = [signature.domain for signature in dkim
                    if signature.result is Result.PASS
                    and aligned(from_domain, signature.domain, record.strict_dkim)]
    if spf_aligned or dkim_aligned:
        how = "spf" if spf_aligned else f"dkim d={dkim_aligned[0]}"
        return DmarcVerdict(Result.PASS, from_domain, policy, reason=f"aligned {how}")
    # A method that could not be checked might have aligned: a DNS fault is never held
    # against the sender. Only one whose identifier would align, though: a signature of
    # a zone that answers SERVFAIL, added to a forgery, must not lift the From domain's
    # policy (an empty d=, a check that did not finish, might have been anything).
    if (spf.result is Result.TEMPERROR and (
            not spf.domain or aligned(from_domain, spf.domain, record.strict_spf))) or any(
            signature.result is Result.TEMPERROR and (
                not signature.domain
                or aligned(from_domain, signature.domain, record.strict_dkim))
            for signature in dkim):
        return DmarcVerdict(Result.TEMPERROR, from_domain, policy,
                            reason="no aligned pass; a method had a temporary error")
    disposition = POLICIES[policy]
    if record.percent < 100 and sample() * 100 >= record.percent:
        # §6.6.4: a message outside the sample gets the next policy down.
        disposition = _STRICTNESS[max(_STRICTNESS.index(disposition) - 1, 0)]
        return DmarcVerdict(Result.FAIL, from_domain, policy, disposition,
                            reason=f"no aligned pass; outside pct={record.percent}")
    return DmarcVerdict(Result.FAIL, from_domain, policy, disposition,
                        reason="no aligned pass")


async def check_dmarc(domains: Sequence[str], *, spf: SpfVerdict,
                      dkim: Sequence[DkimVerdict], dns: AsyncDns,
                      sample: Callable[[], float] = random.random) -> DmarcVerdict:
    """The message's DMARC verdict for its From domains (see from_domains): the strictest
    failing one, else the first's."""
    if not domains:
        return DmarcVerdict(Result.NONE, "", reason="no From domain")
    if len(domains) > MAX_FROM_DOMAINS:
        # Each is up to two lookups, all at once: a From of thousands of domains would be
        # a query amplifier (and a socket each). §6.6.1 lets a receiver refuse such a
        # From; it is filed as Junk, unverified.
        return DmarcVerdict(Result.PERMERROR, domains[0], "", Disposition.QUARANTINE,
                            reason=f"over {MAX_FROM_DOMAINS} From domains")
    found = await asyncio.gather(*(discover(domain, dns) for domain in domains),
                                 return_exceptions=True)
    verdicts = []
    for domain, policy in zip(domains, found, strict=True):
        if isinstance(policy, DnsFailure):
            verdicts.append(DmarcVerdict(Result.TEMPERROR, domain,
                                         reason=f"policy lookup: {policy}"))
        elif isinstance(policy, BaseException):
            raise policy
        else:
            verdicts.append(evaluate(domain, policy, spf, dkim, sample))
    failing = [verdict for verdict in verdicts if verdict.result is Result.FAIL]
    if failing:
        return max(failing, key=lambda verdict: _STRICTNESS.index(verdict.disposition))
    # Else one that did not pass (an unverified author is the one to show), else the first.
    return next((verdict for verdict in verdicts if verdict.result is not Result.PASS),
                verdicts[0])
