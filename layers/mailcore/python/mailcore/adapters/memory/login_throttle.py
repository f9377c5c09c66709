"""The LoginThrottle port in memory (sliding windows), for tests and the edge's tests."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from mailcore.errors import Throttled


class InMemoryLoginThrottle:
    def __init__(self, max_per_address: int = 5, max_per_client: int = 10,
                 window_seconds: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"address": max_per_address, "client": max_per_client}
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, address: str, client: str) -> None:
        with self._lock:
            for kind, subject in (("address", address), ("client", client)):
                if self._count((kind, subject)) >= self._limits[kind]:
                    raise Throttled(f"too many failed logins for {kind}", int(self._window))

    def failed(self, address: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures[("address", address)].append(now)
            self._failures[("client", client)].append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(("address", address), None)

    def _count(self, key: tuple[str, str]) -> int:
        failures = self._failures.get(key)
        if not failures:
            return 0
        horizon = self._clock() - self._window
        while failures and failures[0] < horizon:
            failures.popleft()
        return len(failures)
