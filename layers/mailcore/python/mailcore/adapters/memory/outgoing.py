"""The DeliveryQueue port in memory, for tests: jobs sent, and SQS's visibility timeout as
the wait before a job deferred by `retry_later` is received again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from mailcore.domain.delivery import DeliveryJob


class InMemoryDeliveryQueue:
    def __init__(self, visibility_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs: list[DeliveryJob] = []  # every job sent, in order
        self.deferred: dict[str, int] = {}  # receipt -> seconds
        self._visible_at: list[float] = []
        self._receipts: dict[str, int] = {}  # receipt -> index in jobs
        self._visibility = visibility_seconds
        self._clock = clock

    def send(self, job: DeliveryJob) -> None:
        self.jobs.append(job)
        self._visible_at.append(self._clock())

    def retry_later(self, receipt: str, seconds: int) -> None:
        self.deferred[receipt] = seconds
        self._visible_at[self._receipts[receipt]] = self._clock() + max(0, seconds)

    def receive(self) -> list[tuple[DeliveryJob, str]]:
        """What a consumer is given now (the function's event), each with its receipt; a
        job received stays invisible for the visibility timeout, as in SQS."""
        now = self._clock()
        received = []
        for index, job in enumerate(self.jobs):
            if self._visible_at[index] <= now:
                receipt = uuid.uuid4().hex
                self._receipts[receipt] = index
                self._visible_at[index] = now + self._visibility
                received.append((job, receipt))
        return received
