"""Failed logins per address and per client, in a sliding window, against guessing."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class AuthFailureLimiter:
    def __init__(self, max_per_address: int = 5, max_per_client: int = 10,
                 window_seconds: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"address": max_per_address, "client": max_per_client}
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, address: str, client: str) -> bool:
        with self._lock:
            return (self._count(("address", address)) >= self._limits["address"]
                    or self._count(("client", client)) >= self._limits["client"])

    def record_failure(self, address: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures[("address", address)].append(now)
            self._failures[("client", client)].append(now)

    def record_success(self, address: str) -> None:
        with self._lock:
            self._failures.pop(("address", address), None)

    def _count(self, key: tuple[str, str]) -> int:
        failures = self._failures.get(key)
        if not failures:
            return 0
        horizon = self._clock() - self._window
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return 0
        return len(failures)
