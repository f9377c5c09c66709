"""What verification found about one message, and what it means for it.

A Verdict is made once, by the edge, at the end of DATA (where the client address, HELO and
MAIL FROM are known and the message can still be refused). It travels with the stored
message in its envelope (for filing: Junk or Inbox) and is written into the stored bytes as
one Authentication-Results header (RFC 8601, for display).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Result(StrEnum):
    """RFC 8601 §2.7 result values shared by SPF, DKIM and DMARC."""

    PASS = "pass"  # noqa: S105 (a result, not a password)
    FAIL = "fail"
    SOFTFAIL = "softfail"  # SPF only
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"  # a DNS timeout or SERVFAIL: the message is still accepted
    PERMERROR = "permerror"
    POLICY = "policy"  # DKIM: a valid signature our policy does not accept


class Disposition(StrEnum):
    """What becomes of the message (RFC 7489 §6.3 p= values, as applied)."""

    DELIVER = "none"
    QUARANTINE = "quarantine"  # filed into each recipient's Junk
    REJECT = "reject"  # 550 5.7.26 at the end of DATA


@dataclass(frozen=True)
class SpfVerdict:
    result: Result
    domain: str  # the domain checked: MAIL FROM's (or the HELO name's when MAIL FROM is empty)
    scope: str = "mailfrom"  # or "helo"
    reason: str = ""  # for the log and the header's comment; never shown as an error


@dataclass(frozen=True)
class DkimVerdict:
    result: Result
    domain: str  # d=
    selector: str = ""  # s=
    algorithm: str = ""  # a=, "rsa-sha256" or "ed25519-sha256"
    header_b: str = ""  # the first characters of b=, telling two signatures apart (RFC 6008)
    reason: str = ""


@dataclass(frozen=True)
class DmarcVerdict:
    result: Result
    from_domain: str  # the RFC5322.From domain
    policy: str = ""  # the applicable published p= (or sp=): none/quarantine/reject, "" if none
    disposition: Disposition = Disposition.DELIVER
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """Everything verification found about one message received on the MX port."""

    spf: SpfVerdict
    dkim: tuple[DkimVerdict, ...] = ()  # one per DKIM-Signature, in header order
    dmarc: DmarcVerdict | None = None
    helo_spf: SpfVerdict | None = None
    # Set when the From domain is one of ours and DMARC did not pass (issue 28, item 2).
    claims_hosted_domain: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def disposition(self) -> Disposition:
        return self.dmarc.disposition if self.dmarc is not None else Disposition.DELIVER

    @property
    def junk(self) -> bool:
        return self.disposition is Disposition.QUARANTINE

    def to_document(self) -> dict[str, Any]:
        """A JSON-able form, kept in the stored envelope (schema 2). Reasons are left out:
        they are for the log and the header's comments, and the envelope rides in the
        message object's 2 KB of metadata (a longer one costs a second PUT)."""
        return {
            "spf": _spf_document(self.spf),
            "helo_spf": None if self.helo_spf is None else _spf_document(self.helo_spf),
            "dkim": [{"result": str(s.result), "domain": s.domain, "selector": s.selector,
                      "algorithm": s.algorithm, "header_b": s.header_b} for s in self.dkim],
            "dmarc": None if self.dmarc is None else {
                "result": str(self.dmarc.result), "from_domain": self.dmarc.from_domain,
                "policy": self.dmarc.policy, "disposition": str(self.dmarc.disposition)},
            "claims_hosted_domain": self.claims_hosted_domain,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Verdict:
        """The inverse of to_document; raises ValueError/KeyError/TypeError on a bad one."""
        dmarc = document.get("dmarc")
        helo = document.get("helo_spf")
        return cls(
            spf=_spf_of(document["spf"]),
            helo_spf=None if helo is None else _spf_of(helo),
            dkim=tuple(DkimVerdict(Result(item["result"]), str(item["domain"]),
                                   str(item.get("selector", "")),
                                   str(item.get("algorithm", "")),
                                   str(item.get("header_b", "")), str(item.get("reason", "")))
                       for item in document.get("dkim", [])),
            dmarc=None if dmarc is None else DmarcVerdict(
                Result(dmarc["result"]), str(dmarc["from_domain"]), str(dmarc.get("policy", "")),
                Disposition(dmarc.get("disposition", "none")), str(dmarc.get("reason", ""))),
            claims_hosted_domain=bool(document.get("claims_hosted_domain", False)),
        )


def _spf_document(verdict: SpfVerdict) -> dict[str, str]:
    return {"result": str(verdict.result), "domain": verdict.domain, "scope": verdict.scope}


def _spf_of(document: dict[str, Any]) -> SpfVerdict:
    return SpfVerdict(Result(document["result"]), str(document["domain"]),
                      str(document.get("scope", "mailfrom")), str(document.get("reason", "")))
