"""The DeliveryQueue port in memory, for tests."""

from __future__ import annotations

from mailcore.domain.delivery import DeliveryJob


class InMemoryDeliveryQueue:
    def __init__(self) -> None:
        self.jobs: list[DeliveryJob] = []
        self.deferred: dict[str, int] = {}  # receipt -> seconds

    def send(self, job: DeliveryJob) -> None:
        self.jobs.append(job)

    def retry_later(self, receipt: str, seconds: int) -> None:
        self.deferred[receipt] = seconds
