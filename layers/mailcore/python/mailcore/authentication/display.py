"""What a reader is told about a stored message's authentication, read from its
Authentication-Results fields (RFC 8601): display uses the headers.

Only a field whose authserv-id is ours is believed: the edge prepends exactly one, with our
hostname, and removes incoming ones that claim it; any other field could have been written
by anyone. The first field with our id is ours (the edge adds it on top); one lower down
that claims it too is ignored. A message without such a field (stored before verification
was on, or written where it is off) has no verdict at all, which is not a failure.

Whatever the field says, reading it never fails: the field is bounded, parsed by authres
within that bound, and a field of ours that cannot be parsed verifies nothing.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailcore.domain.verdict import Result

# Ours carries SPF, two DKIM results and DMARC in about 400 characters, each further DKIM
# signature about 150 more. authres copies the rest of the field for each token it reads,
# so its time grows with the square of the length (8 KiB of hostile text: 0.07 s). A longer
# field is damaged, not cut short: cut, it could end inside a domain name. (Header lines are
# read up to 8 KiB a field, parsing/limits.py, so one cut there is longer than this too.)
MAX_FIELD = 6 * 1024
MAX_DKIM = 8  # results shown; we sign twice, most senders once
MAX_VALUE = 255  # a domain name, a selector, an address
POLICIES = frozenset({"none", "quarantine", "reject"})
# The authserv-id of a field authres cannot parse: its first word, after any comments.
_LEADING_ID = re.compile(r"\s*(?:\([^()]{0,200}\)\s*){0,4}([^\s;()]{1,255})")
# The policy as our writer and others give it when not as policy.dmarc: a comment after
# the result, "dmarc=pass (p=quarantine dis=none)". authres drops comments, so it is read
# from the field's text.
_DMARC_COMMENT = re.compile(r"(?i)(?:^|[;\s])dmarc\s*=\s*[a-z]{1,16}\s*\(([^()]{0,200})\)")
_POLICY_IN_COMMENT = re.compile(r"(?i)(?:^|\s)p\s*=\s*([a-z]{1,16})")


@dataclass(frozen=True)
class SpfShown:
    result: Result
    domain: str | None  # MAIL FROM's domain (or HELO's, for a bounce)


@dataclass(frozen=True)
class DkimShown:
    result: Result
    domain: str | None  # d=, the signing domain
    selector: str | None
    algorithm: str | None


@dataclass(frozen=True)
class DmarcShown:
    result: Result
    from_domain: str | None  # the From domain the verifier evaluated
    policy: str | None  # the domain's published p=


@dataclass(frozen=True)
class AuthShown:
    result: Result
    account: str | None  # the account that signed in to send it (our own users' mail)


@dataclass(frozen=True)
class AuthenticationShown:
    spf: SpfShown | None
    dkim: tuple[DkimShown, ...]
    dmarc: DmarcShown | None
    auth: AuthShown | None
    from_domain: str | None  # the domain of the From the reader sees; None if not one
    from_verified: bool


def authentication_shown(results_fields: Iterable[str], from_fields: Sequence[str],
                         authserv_id: str) -> AuthenticationShown | None:
    """The verdict of our Authentication-Results field among `results_fields` (the fields'
    values, top to bottom), for a message whose From fields are `from_fields`; None when
    none of them is ours."""
    ours = _domain(authserv_id)
    for value in results_fields:
        clauses = _clauses(value) if len(value) <= MAX_FIELD else None
        if clauses is None:  # damaged: believed only as far as saying it is not ours
            match = _LEADING_ID.match(value)
            if match and _domain(match.group(1)) == ours:
                return _shown((), None, from_fields)
            continue
        field_id, results = clauses
        if _domain(field_id) == ours:
            return _shown(results, value, from_fields)
    return None


def _clauses(value: str) -> tuple[str, Sequence[Any]] | None:
    import authres
    import authres.dmarc

    try:
        header = authres.FeatureContext(authres.dmarc).parse_value(value)
    except (authres.core.AuthResError, ValueError, RecursionError):
        # RecursionError: comments nest, and authres reads them recursively.
        return None
    return str(header.authserv_id or ""), header.results


def _shown(results: Sequence[Any], text: str | None,
           from_fields: Sequence[str]) -> AuthenticationShown:
    by_method: dict[str, list[tuple[Result, dict[str, str]]]] = {}
    for clause in results:
        result = _result(clause.result)
        if result is not None:
            properties = {f"{p.type}.{p.name}".lower(): str(p.value)
                          for p in clause.properties}
            by_method.setdefault(clause.method, []).append((result, properties))
    from_domain = _from_domain(from_fields)
    dmarc = _dmarc(by_method.get("dmarc", []), text)
    auth = _auth(by_method.get("auth", []))
    dkim = tuple(DkimShown(result, _domain(p.get("header.d") or _after_at(p.get("header.i"))),
                           _bounded(p.get("header.s")), _bounded(p.get("header.a")))
                 for result, p in by_method.get("dkim", [])[:MAX_DKIM])
    return AuthenticationShown(spf=_spf(by_method.get("spf", [])), dkim=dkim, dmarc=dmarc,
                               auth=auth, from_domain=from_domain,
                               from_verified=_verified(from_domain, dkim, dmarc, auth))


def _verified(from_domain: str | None, dkim: tuple[DkimShown, ...], dmarc: DmarcShown | None,
              auth: AuthShown | None) -> bool:
    """One of our accounts sent it, or the From's own domain is proven: DMARC passed for it,
    or (a domain without a DMARC record: dmarc=none) a signature of that very domain
    verified. The domain's organisational relatives are left to DMARC, which knows them."""
    if auth is not None and auth.result is Result.PASS:
        return True
    if from_domain is None:
        return False
    if dmarc is not None and dmarc.result is Result.PASS and dmarc.from_domain == from_domain:
        return True
    return any(each.result is Result.PASS and each.domain == from_domain for each in dkim)


def _spf(clauses: list[tuple[Result, dict[str, str]]]) -> SpfShown | None:
    # MAIL FROM's check is the one DMARC aligns; HELO's stands in only for a null sender.
    for result, properties in sorted(clauses, key=lambda c: "smtp.mailfrom" not in c[1]):
        checked = properties.get("smtp.mailfrom") or properties.get("smtp.helo")
        return SpfShown(result, _domain(_after_at(checked)))
    return None


def _dmarc(clauses: list[tuple[Result, dict[str, str]]], text: str | None) -> DmarcShown | None:
    if not clauses:
        return None
    result, properties = clauses[0]
    policy = properties.get("policy.dmarc")
    if policy is None and text is not None:
        comment = _DMARC_COMMENT.search(text)
        found = comment and _POLICY_IN_COMMENT.search(comment.group(1))
        policy = found.group(1) if found else None
    policy = policy.lower() if policy else None
    return DmarcShown(result, _domain(properties.get("header.from")),
                      policy if policy in POLICIES else None)


def _auth(clauses: list[tuple[Result, dict[str, str]]]) -> AuthShown | None:
    if not clauses:
        return None
    result, properties = clauses[0]
    return AuthShown(result, _bounded(properties.get("smtp.auth")))


def _from_domain(from_fields: Sequence[str]) -> str | None:
    """The one domain of the From field; None for no From, several From fields (RFC 5322
    allows one) or addresses of several domains: what the reader sees cannot be verified."""
    if len(from_fields) != 1 or len(from_fields[0]) > MAX_FIELD:
        return None
    domains = {_domain(address.rpartition("@")[2]) if "@" in address else None
               for _, address in email.utils.getaddresses([from_fields[0]])}
    return domains.pop() if len(domains) == 1 else None


def _result(value: str) -> Result | None:
    try:
        return Result(value.lower())
    except ValueError:  # not an RFC 8601 result: the clause says nothing we can show
        return None


def _after_at(value: str | None) -> str | None:
    """The domain of `local@domain`, or the value itself (smtp.mailfrom may be a domain)."""
    return value.rpartition("@")[2] if value else None


def _domain(value: str | None) -> str | None:
    """Lower case, without a final dot, as an A-label where it is a U-label."""
    if not value:
        return None
    domain = value.strip().rstrip(".").lower()[:MAX_VALUE]
    try:
        return domain.encode("idna").decode("ascii") or None
    except UnicodeError:
        return domain or None


def _bounded(value: str | None) -> str | None:
    return value[:MAX_VALUE] if value else None
