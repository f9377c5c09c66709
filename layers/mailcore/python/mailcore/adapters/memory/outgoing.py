from __future__ import annotations

from mailcore.domain.delivery import DeliveryJob


class InMemoryDeliveryQueue:
    def __init__(self) -> None:
        self.jobs: list[DeliveryJob] = []
        self._queued: set[tuple[str, str]] = set()

    def enqueue(self, job: DeliveryJob) -> None:
        if (job.message_id, job.domain) in self._queued:
            return
        self._queued.add((job.message_id, job.domain))
        self.jobs.append(job)
