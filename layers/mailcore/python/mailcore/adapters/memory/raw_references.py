"""The RawReferences port in memory, for tests (and the in-memory mailboxes' removals)."""

from __future__ import annotations

import threading


class InMemoryRawReferences:
    def __init__(self) -> None:
        self.references: dict[str, int] = {}
        self.released_jobs: set[tuple[str, str]] = set()
        self.let_go: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, raw_key: str, references: int) -> bool:
        with self._lock:
            if raw_key in self.references:
                return False
            self.references[raw_key] = references
            return True

    def release_job(self, raw_key: str, domain: str) -> bool:
        with self._lock:
            if (raw_key, domain) in self.released_jobs:
                return False
            self.released_jobs.add((raw_key, domain))
            return self._give_back(raw_key)

    def released(self, raw_key: str) -> bool:
        return raw_key in self.let_go

    def share(self, raw_key: str) -> bool:
        """One more copy of bytes still held, as the DynamoDB adapter's copy does; False
        when they were let go (or never held)."""
        with self._lock:
            if raw_key not in self.references or raw_key in self.let_go:
                return False
            self.references[raw_key] += 1
            return True

    def give_back(self, raw_key: str) -> bool:
        """A copy removed for good: as the DynamoDB adapter does inside its delete."""
        with self._lock:
            return self._give_back(raw_key)

    def _give_back(self, raw_key: str) -> bool:
        # Bytes never held (a draft's) count from zero, so their one copy lets them go.
        self.references[raw_key] = self.references.get(raw_key, 0) - 1
        if self.references[raw_key] > 0 or raw_key in self.let_go:
            return False
        self.let_go.add(raw_key)
        return True
