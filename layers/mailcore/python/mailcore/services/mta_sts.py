"""Which MTA-STS policy (RFC 8461) holds for a destination domain now: the cached one while
its TXT id is unchanged and its max_age lasts, a freshly fetched one otherwise, the cached
one again when fetching fails, and none (deliver as without MTA-STS) when there is none."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mailcore.domain.mta_sts import (
    CachedPolicy,
    Policy,
    PolicyError,
    Restriction,
    parse_policy,
    restrict,
)
from mailcore.errors import TransientFailure
from mailcore.observability import logger

if TYPE_CHECKING:
    from mailcore.domain.next_hop import NextHop


class PolicySource(Protocol):
    def policy_id(self, domain: str) -> str | None:
        """The id of the domain's `_mta-sts` TXT record (None: it has none, §3.1);
        TransientFailure when DNS does not answer."""
        ...

    def fetch(self, domain: str) -> str:
        """The text of the domain's policy file over HTTPS (§3.3); TransientFailure when it
        cannot be had as the RFC says it must be served."""
        ...


class PolicyCache(Protocol):
    def get(self, domain: str) -> CachedPolicy | None: ...

    def put(self, domain: str, cached: CachedPolicy) -> None: ...


class TransportSecurity:
    """One per warm function: policies it has seen stay in memory beside the shared cache,
    so a batch to one domain reads neither the table nor the policy host again."""

    def __init__(self, source: PolicySource, cache: PolicyCache) -> None:
        self._source = source
        self._cache = cache
        self._warm: dict[str, CachedPolicy] = {}

    def restrict(self, domain: str, hops: list[NextHop], now: datetime) -> Restriction:
        if all(hop.operator_named for hop in hops):
            # The operator named where this domain's mail goes (--mx): no MX answer from
            # DNS, which is what MTA-STS guards (Postfix too keys TLS policy on the next
            # hop it was given).
            return Restriction(hops)
        restriction = restrict(self.policy_for(domain, now), domain, hops)
        if restriction.would_fail:
            logger.warning("mta-sts testing policy would defer", domain=domain,
                           reason=restriction.would_fail)
        return restriction

    def policy_for(self, domain: str, now: datetime) -> Policy | None:
        domain = domain.lower()
        try:
            policy_id = self._source.policy_id(domain)
        except TransientFailure as exc:
            # A DNS failure is no reason to drop a policy we hold (§5.1).
            logger.info("mta-sts record lookup failed", domain=domain, error=str(exc))
            policy_id = None
        cached = self._cached(domain, now, policy_id)
        if policy_id is None or (cached is not None and cached.policy_id == policy_id):
            return cached.policy if cached else None
        try:
            policy = parse_policy(self._source.fetch(domain))
        except (TransientFailure, PolicyError) as exc:
            # §5.1: a valid cached policy still holds; with none, deliver as before.
            logger.warning("mta-sts policy fetch failed", domain=domain, error=str(exc),
                           cached=cached is not None)
            return cached.policy if cached else None
        fresh = CachedPolicy.fetched(policy, policy_id, now)
        self._warm[domain] = fresh
        try:
            self._cache.put(domain, fresh)
        except TransientFailure as exc:
            logger.warning("mta-sts policy not cached", domain=domain, error=str(exc))
        logger.info("mta-sts policy fetched", domain=domain, mode=policy.mode.value,
                    policy_id=policy_id, max_age=policy.max_age)
        return policy

    def _cached(self, domain: str, now: datetime, policy_id: str | None) -> CachedPolicy | None:
        """The valid cached policy, from memory when it is the current id's, else from the
        table (another instance may have fetched it)."""
        warm = self._warm.get(domain)
        if warm is not None and warm.valid_at(now) and policy_id in (None, warm.policy_id):
            return warm
        try:
            stored = self._cache.get(domain)
        except TransientFailure as exc:
            logger.warning("mta-sts cache unavailable", domain=domain, error=str(exc))
            stored = None
        if stored is not None and stored.valid_at(now):
            self._warm[domain] = stored
            return stored
        return warm if warm is not None and warm.valid_at(now) else None
