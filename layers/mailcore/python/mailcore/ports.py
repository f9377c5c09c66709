"""What the services need from the outside world. Adapters live in `adapters/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientStatus
from mailcore.domain.envelope import Envelope
from mailcore.domain.mailbox import Folder, Page, StoredMessage


class RawMessageStore(Protocol):
    """Durable store of messages exactly as received, with their envelopes."""

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        """Store durably and return the message's key; raise StorageUnavailable on any fault."""
        ...

    def get_raw(self, key: str) -> bytes: ...

    def get_envelope(self, key: str) -> Envelope: ...


class MailboxRepository(Protocol):
    def file(self, message: StoredMessage) -> bool:
        """File once: False when this message is already in this account's mailbox."""
        ...

    def list_folder(
        self, account: str, folder: str, limit: int, cursor: str | None
    ) -> Page: ...

    def get(self, account: str, message_id: str) -> StoredMessage:
        """Raise MessageNotFound unless the message is in this account's mailbox."""
        ...

    def folders(self, account: str) -> list[Folder]: ...


@dataclass(frozen=True)
class Token:
    token: str
    expires_in: int


class AccountDirectory(Protocol):
    def is_account(self, address: str) -> bool: ...

    def authenticate(self, address: str, password: str) -> Token:
        """Raise AuthenticationFailed for a wrong password or unknown account alike."""
        ...


class DeliveryQueue(Protocol):
    def enqueue(self, job: DeliveryJob) -> None:
        """Queue once per (message, domain): a repeated call for a queued job does nothing."""
        ...


@dataclass(frozen=True)
class NextHop:
    host: str
    port: int


class NextHopResolver(Protocol):
    def resolve(self, domain: str) -> list[NextHop]:
        """Hosts to try in order. PermanentFailure: the domain takes no mail (null MX,
        no such domain). TransientFailure: ask again later."""
        ...


@dataclass(frozen=True)
class RecipientReply:
    recipient: str
    code: int  # 0 when no SMTP reply was had (connection failed)
    text: str
    remote_mta: str | None


class SmtpSender(Protocol):
    def send(self, hops: list[NextHop], mail_from: str, recipients: tuple[str, ...],
             raw: bytes) -> list[RecipientReply]:
        """One SMTP transaction at the first hop that answers; a reply per recipient."""
        ...


class DeliveryLedger(Protocol):
    def statuses(self, message_id: str, domain: str) -> dict[str, RecipientStatus]: ...

    def record(self, message_id: str, domain: str, statuses: list[RecipientStatus]) -> None: ...
