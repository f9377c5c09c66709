"""MTA-STS (RFC 8461): a receiving domain's policy that its MX hosts take mail only over
TLS with a certificate valid for their names, and what it does to our direct delivery.

Pure: the TXT record and the policy file are parsed here; finding and fetching them is the
adapters' work (adapters/mta_sts_source.py), choosing between a cached and a fetched policy
the service's (services/mta_sts.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from mailcore.domain.next_hop import NextHop
from mailcore.errors import MailError

# RFC 8461 §3.2: max_age is at most 31557600 seconds (about a year); §3.3: a policy file
# is small (senders may refuse more than 64 KiB).
MAX_AGE_LIMIT = 31_557_600
POLICY_SIZE_LIMIT = 64 * 1024
TXT_VERSION = "v=STSv1"
_POLICY_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MAX_AGE = re.compile(r"[0-9]{1,10}")
# A hostname or a one-label wildcard in front of one (§3.2: "*.example.com").
_MX_PATTERN = re.compile(r"(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*"
                         r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.?")


class PolicyError(MailError):
    """A TXT record or policy file that is not a valid MTA-STS one: no policy (§3)."""


class Mode(Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True)
class Policy:
    mode: Mode
    mx: tuple[str, ...]
    max_age: int  # seconds

    def allows(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)


def policy_id_of(records: list[str]) -> str | None:
    """The `id` of the domain's `_mta-sts` TXT record (§3.1), None when there is none.
    Records that do not start with v=STSv1 are someone else's; two that do, or one with
    no valid id, make no record at all."""
    ours = [record for record in records if record.split(";", 1)[0].rstrip() == TXT_VERSION]
    if len(ours) != 1:
        return None
    for field in (part.strip() for part in ours[0].split(";")[1:]):
        key, _, value = field.partition("=")
        if key.strip() == "id":
            value = value.strip()
            return value if _POLICY_ID.fullmatch(value) else None
    return None


def parse_policy(text: str) -> Policy:
    """The policy file's `key: value` lines (§3.2); unknown keys are ignored, a repeated
    key other than mx counts the first time. PolicyError when it is not a valid one."""
    fields: dict[str, str] = {}
    patterns: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"not a policy line: {line[:60]!r}")
        key, value = key.strip(), value.strip()
        if key == "mx":
            if not _MX_PATTERN.fullmatch(value):
                raise PolicyError(f"not an MX pattern: {value[:60]!r}")
            patterns.append(value.rstrip(".").lower())
        else:
            fields.setdefault(key, value)
    if fields.get("version") != "STSv1":
        raise PolicyError("version is not STSv1")
    try:
        mode = Mode(fields.get("mode", ""))
    except ValueError as exc:
        raise PolicyError(f"unknown mode {fields.get('mode', '')[:20]!r}") from exc
    max_age = fields.get("max_age", "")
    if not _MAX_AGE.fullmatch(max_age) or int(max_age) > MAX_AGE_LIMIT:
        raise PolicyError(f"max_age is not 0 to {MAX_AGE_LIMIT} seconds")
    if mode is not Mode.NONE and not patterns:
        raise PolicyError(f"mode {mode.value} without an mx pattern")
    return Policy(mode, tuple(patterns), int(max_age))


def mx_matches(pattern: str, host: str) -> bool:
    """`mx.example.com` matches itself; `*.example.com` matches one more label to the left
    (mx1.example.com, not example.com nor a.b.example.com). Case does not count."""
    pattern, host = pattern.rstrip(".").lower(), host.rstrip(".").lower()
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label and dot) and rest == pattern[2:]
    return host == pattern


@dataclass(frozen=True)
class CachedPolicy:
    """A fetched policy with the TXT id it was fetched under, valid until `expires_at`
    (fetched + max_age, §5.1)."""

    policy: Policy
    policy_id: str
    expires_at: datetime

    @classmethod
    def fetched(cls, policy: Policy, policy_id: str, now: datetime) -> CachedPolicy:
        return cls(policy, policy_id, now + timedelta(seconds=policy.max_age))

    def valid_at(self, now: datetime) -> bool:
        return now < self.expires_at

    def to_document(self) -> dict[str, Any]:
        return {"mode": self.policy.mode.value, "mx": list(self.policy.mx),
                "max_age": self.policy.max_age, "policy_id": self.policy_id,
                "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> CachedPolicy:
        return cls(Policy(Mode(document["mode"]), tuple(document["mx"]),
                          int(document["max_age"])),
                   str(document["policy_id"]), datetime.fromisoformat(document["expires_at"]))


@dataclass(frozen=True)
class Restriction:
    """What a policy leaves of a domain's next hops: `hops` to try (each demanding valid
    TLS under enforce), or, when none is left, `refusal` (the deferral's status text).
    `would_fail` is what testing mode would have refused, for the log (§5)."""

    hops: list[NextHop]
    refusal: str | None = None
    would_fail: str | None = None


def restrict(policy: Policy | None, domain: str, hops: list[NextHop]) -> Restriction:
    if policy is None or policy.mode is Mode.NONE:
        return Restriction(hops)
    named = f"MTA-STS policy of {domain}"
    refused = [hop.host for hop in hops if not policy.allows(hop.host)]
    reason = f"4.7.5 {named}: {', '.join(refused)} is not an allowed MX" if refused else None
    if policy.mode is Mode.TESTING:
        return Restriction(hops, would_fail=reason)
    allowed = [replace(hop, valid_tls_required_by=named)
               for hop in hops if policy.allows(hop.host)]
    if not allowed:
        return Restriction([], refusal=reason or f"4.7.5 {named}: no MX host")
    return Restriction(allowed)
