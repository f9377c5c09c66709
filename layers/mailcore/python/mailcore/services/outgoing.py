"""Queueing outgoing mail: the remote recipients of submitted mail become delivery jobs,
one per destination domain, each queued once however often filing runs."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.delivery import DeliveryJob, jobs_for
from mailcore.ports import DeliveryLedger, DeliveryQueue


@dataclass(frozen=True)
class Outgoing:
    """Where submitted mail for other domains goes: the queue, and the jobs' record."""

    queue: DeliveryQueue
    ledger: DeliveryLedger


def delivery_jobs(message_id: str, raw_key: str, mail_from: str,
                  remote: list[str]) -> list[DeliveryJob]:
    return jobs_for(message_id, raw_key, mail_from, remote)


def queue_once(job: DeliveryJob, queue: DeliveryQueue, ledger: DeliveryLedger, *,
               first_try: bool = False) -> bool:
    """Queue the job unless its record says it was; True when queued now. On the first try
    at filing its message (RawReferences.hold said so) there is no record to read.

    Sent first, recorded after: a crash between the two queues the job a second time,
    which delivery tolerates (recipients done are never sent to again), where the other
    order could record a job that never reached the queue."""
    if not first_try and ledger.was_queued(job.message_id, job.domain):
        return False
    queue.send(job)
    ledger.record_queued(job)
    return True
