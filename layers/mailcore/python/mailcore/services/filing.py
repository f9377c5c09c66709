"""Filing a stored message into the mailboxes of its envelope recipients."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.address import try_parse_address
from mailcore.domain.ids import message_id_of_key
from mailcore.domain.mailbox import INBOX, StoredMessage
from mailcore.domain.message import summarise
from mailcore.errors import PermanentFailure
from mailcore.observability import logger
from mailcore.ports import MailboxRepository, RawMessageStore
from mailcore.services.recipients import HostedDomains


@dataclass(frozen=True)
class FilingResult:
    message_id: str
    filed_for: tuple[str, ...]
    already_filed_for: tuple[str, ...]
    not_hosted: tuple[str, ...]


def file_inbound(
    key: str,
    store: RawMessageStore,
    mailboxes: MailboxRepository,
    domains: HostedDomains,
) -> FilingResult:
    """File the message at `key` into the Inbox of each hosted envelope recipient.

    The edge only accepts RCPT TO for existing accounts, so the envelope is the
    routing list; headers are never consulted. Safe to repeat: a recipient who
    already has this message gets no second copy.
    """
    envelope = store.get_envelope(key)
    raw = store.get_raw(key)
    summary = summarise(raw)
    message_id = message_id_of_key(key)
    if message_id is None:
        raise PermanentFailure(f"not a message key: {key!r}")
    filed: list[str] = []
    duplicate: list[str] = []
    not_hosted: list[str] = []
    for rcpt in dict.fromkeys(envelope.rcpt_tos):
        address = try_parse_address(rcpt)
        if address is None or not domains.hosts(address.domain):
            not_hosted.append(rcpt)
            continue
        stored = StoredMessage(
            account=str(address),
            message_id=message_id,
            folder=INBOX,
            received_at=envelope.received_at,
            raw_key=key,
            size=len(raw),
            summary=summary,
        )
        (filed if mailboxes.file(stored) else duplicate).append(str(address))
    if summary.parse_problem:
        logger.warning("message filed with parse problem", message_id=message_id,
                       parse_problem=summary.parse_problem)
    return FilingResult(message_id, tuple(filed), tuple(duplicate), tuple(not_hosted))

