"""aiosmtpd hooks: each SMTP decision is a mailcore call, run off the event loop."""

from __future__ import annotations

import asyncio
import email.utils
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aws_lambda_powertools import Logger
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.errors import TransientFailure
from mailcore.ports import AccountDirectory, RawMessageStore
from mailcore.services.accept import accept_message
from mailcore.services.recipients import HostedDomains, RecipientVerdict, judge_recipient

from edge_smtp import replies

logger = Logger(child=True)


class EdgeHandler:
    def __init__(
        self,
        store: RawMessageStore,
        directory: AccountDirectory,
        domains: HostedDomains,
        hostname: str,
        executor: Executor | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._domains = domains
        self._hostname = hostname
        self._executor = executor

    async def _off_loop(self, function: Any, *args: Any) -> Any:
        # boto3 blocks; the event loop serves every other session meanwhile.
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str,
        mail_options: list[str],
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            verdict, canonical = await self._off_loop(
                judge_recipient, address, self._domains, self._directory
            )
        except TransientFailure:
            logger.warning("recipient lookup failed", rcpt=address, exc_info=True)
            return replies.LOOKUP_UNAVAILABLE
        if verdict is RecipientVerdict.RELAY_DENIED:
            logger.info("relay denied", rcpt=address, peer=_peer(session))
            return replies.RELAY_DENIED
        if verdict is RecipientVerdict.NO_SUCH_ACCOUNT:
            logger.info("unknown recipient", rcpt=address, peer=_peer(session))
            return replies.NO_SUCH_ACCOUNT
        envelope.rcpt_tos.append(canonical)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        message_id = new_message_id()
        received_at = datetime.now(UTC)
        original = envelope.original_content or b""
        raw = self._received_header(session, envelope, message_id, received_at) + original
        stored_envelope = Envelope(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=_peer(session),
            helo=session.host_name or "",
            tls=session.ssl is not None,
            received_at=received_at,
        )
        try:
            await self._off_loop(accept_message, self._store, message_id, raw, stored_envelope)
        except TransientFailure:
            logger.warning("message not stored", message_id=message_id, exc_info=True)
            return replies.STORAGE_UNAVAILABLE
        except Exception:
            # Unclassified means temporary: the sender keeps the message and retries.
            logger.exception("message not stored", message_id=message_id)
            return replies.TEMPORARY_ERROR
        logger.info("message accepted", message_id=message_id, size=len(raw),
                    recipients=len(envelope.rcpt_tos), peer=stored_envelope.peer)
        return replies.queued_as(message_id)

    def _received_header(
        self, session: Session, envelope: SmtpEnvelope, message_id: str, received_at: datetime
    ) -> bytes:
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        tls = ""
        if session.ssl is not None:
            protocol += "S"
            cipher = session.ssl.get("cipher")  # (name, protocol version, secret bits)
            if isinstance(cipher, tuple) and len(cipher) >= 2:
                tls = f"\r\n\t(using {cipher[1]} with cipher {cipher[0]})"
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        header = (
            f"Received: from {_sanitise(session.host_name or 'unknown')} ({_peer(session)})"
            f"\r\n\tby {self._hostname} (mailpipe) with {protocol} id {message_id}{tls}{recipient};"
            f"\r\n\t{email.utils.format_datetime(received_at)}\r\n"
        )
        return header.encode("ascii", "replace")


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def _sanitise(text: str) -> str:
    return "".join(char for char in text if char.isprintable() and char not in "()\r\n")[:255]
