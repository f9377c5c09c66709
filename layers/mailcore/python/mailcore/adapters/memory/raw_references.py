"""The RawReferences port in memory, for tests."""

from __future__ import annotations

import threading


class InMemoryRawReferences:
    def __init__(self) -> None:
        self.references: dict[str, int] = {}
        self.released_jobs: set[tuple[str, str]] = set()
        self.let_go: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, raw_key: str, references: int) -> None:
        with self._lock:
            self.references.setdefault(raw_key, references)

    def release_job(self, raw_key: str, domain: str) -> bool:
        with self._lock:
            if (raw_key, domain) in self.released_jobs:
                return False
            self.released_jobs.add((raw_key, domain))
            self.references[raw_key] -= 1
            return self._let_go(raw_key)

    def released(self, raw_key: str) -> bool:
        return raw_key in self.let_go

    def _let_go(self, raw_key: str) -> bool:
        if self.references[raw_key] > 0 or raw_key in self.let_go:
            return False
        self.let_go.add(raw_key)
        return True
