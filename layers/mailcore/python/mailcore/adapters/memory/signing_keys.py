"""The SigningKeys port in memory: the keys it was given (the tests' keys, or the document
ECS put into the SMTP edge's environment when it started)."""

from __future__ import annotations

from mailcore.authentication.signing_keys import SigningKey, keys_for_domain


class InMemorySigningKeys:
    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self.keys = list(keys or [])

    def for_domain(self, domain: str) -> list[SigningKey]:
        return keys_for_domain(self.keys, domain)
