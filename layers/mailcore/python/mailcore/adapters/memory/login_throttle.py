"""The LoginThrottle port in memory, for tests and the edge's tests: the DynamoDB adapter's
fixed windows, reservations and give-backs, under one lock (the contract tests hold both
to the same answers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailcore.errors import LoginsInFlight, Throttled
from mailcore.ports import LoginAttempt

IN_FLIGHT_RETRY_SECONDS = 1


@dataclass
class _Window:
    start: int
    attempts: int = 0  # failures, and attempts still being checked
    pending: int = 0


class InMemoryLoginThrottle:
    def __init__(self, max_per_address: int = 5, max_per_client: int = 10,
                 window_seconds: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._limits = {"address": max_per_address, "client": max_per_client}
        self._window = int(window_seconds)
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def reserve(self, address: str, client: str) -> LoginAttempt:
        with self._lock:
            now = int(self._clock())
            counters = self._counters(address, client)
            windows: list[_Window] = []
            for key in counters:
                window = self._windows.get(key)
                if window is None or window.start <= now - self._window:
                    window = self._windows[key] = _Window(now)
                limit = self._limits[key[0]]
                if window.attempts - window.pending >= limit:
                    raise Throttled(f"too many failed logins for {key[0]}",
                                    window.start + self._window - now)
                if window.attempts >= limit:
                    raise LoginsInFlight("the limit is in flight", IN_FLIGHT_RETRY_SECONDS)
                windows.append(window)
            for window in windows:  # both or neither, as the adapter gives one back
                window.attempts += 1
                window.pending += 1
            return LoginAttempt(address, client, tuple(window.start for window in windows))

    def failed(self, attempt: LoginAttempt) -> None:
        with self._lock:
            for _, window in self._reserved(attempt):
                window.pending -= 1

    def succeeded(self, attempt: LoginAttempt) -> None:
        with self._lock:
            for kind, window in self._reserved(attempt):
                window.pending -= 1
                # The address's failures go; attempts still being checked stay counted.
                window.attempts = window.pending if kind == "address" else window.attempts - 1

    def abandoned(self, attempt: LoginAttempt) -> None:
        with self._lock:
            for _, window in self._reserved(attempt):
                window.attempts -= 1
                window.pending -= 1

    def _counters(self, address: str, client: str) -> list[tuple[str, str]]:
        counters = [("address", address.casefold())]
        if client:
            counters.append(("client", client.casefold()))
        return counters

    def _reserved(self, attempt: LoginAttempt) -> list[tuple[str, _Window]]:
        """The windows the attempt was counted in, where they are still the current ones."""
        counters = self._counters(attempt.address, attempt.client)
        found = [(kind, self._windows.get((kind, subject))) for kind, subject in counters]
        return [(kind, window) for (kind, window), start
                in zip(found, attempt.windows, strict=False)
                if window is not None and window.start == start]
