"""The ports of what happens to a message after it is accepted for another domain: the
outgoing queue, the next hop, the SMTP client, each job's ledger and the suppression lists.
(Re-exported by mailcore.ports, which holds the rest.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mailcore.domain.next_hop import NextHop, RecipientReply

if TYPE_CHECKING:
    from mailcore.domain.delivery import DeliveryJob
    from mailcore.domain.delivery_status import RecipientStatus
    from mailcore.domain.suppression import Suppression


class DeliveryQueue(Protocol):
    """The outgoing queue (SQS): jobs wait there, and deferred ones wait there again."""

    def send(self, job: DeliveryJob) -> None:
        """Put the job on the queue (services.outgoing decides whether it is new)."""
        ...

    def retry_later(self, receipt: str, seconds: int) -> None:
        """The job received with `receipt` comes back after `seconds` (0: at once)."""
        ...


class NextHopResolver(Protocol):
    def resolve(self, domain: str) -> list[NextHop]:
        """Hosts to try in order. PermanentFailure: the domain takes no mail (null MX,
        no such domain). TransientFailure: ask again later."""
        ...


class SmtpSender(Protocol):
    def send(self, hops: list[NextHop], mail_from: str, recipients: tuple[str, ...],
             raw: bytes) -> list[RecipientReply]:
        """One SMTP transaction at the first hop that answers; a reply per recipient."""
        ...


class DeliveryLedger(Protocol):
    """Each delivery job's record: that it was queued, and each recipient's status."""

    def was_queued(self, message_id: str, domain: str) -> bool: ...

    def record_queued(self, job: DeliveryJob) -> None:
        """The job is on the queue; the record keeps it, to be queued again by an operator."""
        ...

    def statuses(self, message_id: str, domain: str) -> dict[str, RecipientStatus]: ...

    def statuses_of_message(self, message_id: str) -> dict[str, RecipientStatus]:
        """Every remote recipient's status across the message's delivery jobs."""
        ...

    def record(self, message_id: str, domain: str, statuses: list[RecipientStatus]) -> None: ...


class Suppressions(Protocol):
    """Each sending domain's suppression list, entries by address (`of` those only if given)."""
    def add(self, domain: str, entry: Suppression) -> None: ...  # again: the newer stays
    def entries(self, domain: str, of: Sequence[str] | None = None) -> dict[str, Suppression]: ...
    def remove(self, domain: str, address: str) -> bool: ...  # False: it was not there
