"""The SigningKeys port in memory, for tests: the keys it was given."""

from __future__ import annotations

from mailcore.authentication.signing_keys import SigningKey, keys_for_domain


class InMemorySigningKeys:
    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self.keys = list(keys or [])

    def for_domain(self, domain: str) -> list[SigningKey]:
        return keys_for_domain(self.keys, domain)
