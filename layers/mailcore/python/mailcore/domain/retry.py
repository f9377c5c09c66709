"""When to try a deferred delivery again, and when to give up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration (like 30s, 5m, 4h, 5d): {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class RetryPolicy:
    """Like Postfix: first retry after 5 minutes, doubling, at most 4 hours apart, give up
    after 5 days. `delays` lists the first waits; the last one repeats."""

    delays: tuple[timedelta, ...] = (
        *(timedelta(minutes=5 * 2**n) for n in range(6)), timedelta(hours=4))
    give_up_after: timedelta = timedelta(days=5)
    # Below the outgoing queue's maxReceiveCount (50): a job bounces with a DSN before SQS
    # would move it to the dead-letter queue unannounced, whatever the schedule.
    max_attempts: int = 45

    @classmethod
    def parse(cls, schedule: str, give_up_after: str) -> RetryPolicy:
        """"2s,4s,8s" and "30s": compressed schedules for local runs and tests."""
        return cls(tuple(parse_duration(part) for part in schedule.split(",") if part.strip()),
                   parse_duration(give_up_after))

    def gives_up(self, attempts: int, waited: timedelta) -> bool:
        return waited >= self.give_up_after or attempts >= self.max_attempts

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 for the first)."""
        return self.delays[min(max(attempts, 1), len(self.delays)) - 1]
