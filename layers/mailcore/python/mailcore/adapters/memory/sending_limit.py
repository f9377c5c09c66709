"""The SendingLimit port in memory, for tests: one counter per account and hour."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from mailcore.errors import SendingLimitReached

HOUR = 3600


class InMemorySendingLimit:
    def __init__(self, per_hour: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.per_hour = per_hour
        self.sent: Counter[tuple[str, int]] = Counter()
        self._clock = clock

    def charge(self, account: str, recipients: int) -> None:
        now = int(self._clock())
        hour = now - now % HOUR
        if self.sent[(account, hour)] + recipients > self.per_hour:
            raise SendingLimitReached("over the hourly limit", hour + HOUR - now)
        self.sent[(account, hour)] += recipients
