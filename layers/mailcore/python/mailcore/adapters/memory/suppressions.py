"""The Suppressions port in memory, for tests: a dict per sending domain."""

from __future__ import annotations

from collections.abc import Sequence

from mailcore.domain.suppression import Suppression, suppression_key


class InMemorySuppressions:
    def __init__(self) -> None:
        self.lists: dict[str, dict[str, Suppression]] = {}

    def add(self, domain: str, entry: Suppression) -> None:
        address = suppression_key(entry.address)
        self.lists.setdefault(domain.lower(), {})[address] = Suppression(
            address, entry.reason, entry.since)

    def entries(self, domain: str, of: Sequence[str] | None = None
                ) -> dict[str, Suppression]:
        kept = self.lists.get(domain.lower(), {})
        if of is None:
            return dict(kept)
        return {address: kept[suppression_key(address)] for address in of
                if suppression_key(address) in kept}

    def remove(self, domain: str, address: str) -> bool:
        return self.lists.get(domain.lower(), {}).pop(suppression_key(address), None) is not None
