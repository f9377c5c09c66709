"""The DeliveryLedger port in memory, for tests."""

from __future__ import annotations

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientStatus


class InMemoryDeliveryLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, RecipientStatus]] = {}
        self.queued: dict[tuple[str, str], DeliveryJob] = {}

    def was_queued(self, message_id: str, domain: str) -> bool:
        return (message_id, domain) in self.queued

    def record_queued(self, job: DeliveryJob) -> None:
        self.queued[(job.message_id, job.domain)] = job

    def statuses(self, message_id: str, domain: str) -> dict[str, RecipientStatus]:
        return dict(self.entries.get((message_id, domain), {}))

    def record(self, message_id: str, domain: str, statuses: list[RecipientStatus]) -> None:
        entry = self.entries.setdefault((message_id, domain), {})
        entry.update({status.recipient: status for status in statuses})

    def statuses_of_message(self, message_id: str) -> dict[str, RecipientStatus]:
        found: dict[str, RecipientStatus] = {}
        for (entry_message_id, _), statuses in self.entries.items():
            if entry_message_id == message_id:
                found.update(statuses)
        return found
