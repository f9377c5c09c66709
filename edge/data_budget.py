"""How many message bytes the whole process may hold at once.

Each transaction reserves what it receives, in steps, before it keeps it; when the budget
is spent, new DATA is answered `452 4.3.1` and a transaction that cannot grow any more is
read to its end, discarded and answered the same. The task then stays alive under any
number of large or flooding sessions, and senders retry later, as SMTP intends.

IMAP's literals are held the same way, in a budget of their own (edge/imap/connection.py).
"""

from __future__ import annotations

# A reservation doubles up to this step, then grows by it: a few reservations per message,
# and at most this much reserved beyond what a message holds.
STEP = 1024 * 1024


class DataBudget:
    """Bytes of message data held by all sessions of one process (one event loop, so no
    lock: every call runs on the loop's thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def reserve(self, size: int) -> Reservation | None:
        """A reservation of `size` bytes, or None when that much is not left."""
        if self.in_use + size > self.limit:
            return None
        self.in_use += size
        return Reservation(self, size)


class Reservation:
    def __init__(self, budget: DataBudget, size: int) -> None:
        self._budget = budget
        self.size = size

    def cover(self, needed: int) -> bool:
        """Grow to cover `needed` bytes (in steps); False when the budget is spent."""
        if needed <= self.size:
            return True
        step = max(needed - self.size, min(self.size, STEP))
        if self._budget.in_use + step > self._budget.limit:
            return False
        self._budget.in_use += step
        self.size += step
        return True

    def release(self) -> None:
        self._budget.in_use -= self.size
        self.size = 0
