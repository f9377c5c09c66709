"""A short-lived cache of account lookups: RCPT TO must not cost a directory call each time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mailcore.ports import AccountDirectory, Token


class CachingAccountDirectory:
    def __init__(
        self,
        directory: AccountDirectory,
        positive_ttl: float = 60.0,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._positive_ttl = positive_ttl
        # Short, so that a newly created account receives mail within seconds.
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._known: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def known(self, address: str) -> bool | None:
        """The cached answer, or None when only the directory can tell (a blocking call)."""
        with self._lock:
            cached = self._known.get(address)
        if cached and cached[1] > self._clock():
            return cached[0]
        return None

    def is_account(self, address: str) -> bool:
        cached = self.known(address)
        if cached is not None:
            return cached
        now = self._clock()
        exists = self._directory.is_account(address)
        ttl = self._positive_ttl if exists else self._negative_ttl
        with self._lock:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[address] = (exists, now + ttl)
        return exists

    def authenticate(self, address: str, password: str) -> Token:
        return self._directory.authenticate(address, password)
