"""aiosmtpd hooks: each SMTP decision is a mailcore call that never blocks the event loop.

EdgeHandler serves the MX port (hosted accounts only, no AUTH); SubmissionHandler
serves the submission port (authenticated accounts, any recipient, own addresses).
"""

from __future__ import annotations

import asyncio
import email.utils
import threading
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session
from aws_lambda_powertools import Logger

from edge.smtp import replies
from edge.smtp.accounts import CachingAccountDirectory
from edge.smtp.inbound import InboundVerifier
from edge.smtp.junk_signals import EdgeSignals
from edge.smtp.protocol import EdgeSMTP, hook_names
from mailcore.domain.address import try_parse_address
from mailcore.domain.envelope import Envelope
from mailcore.domain.identity import identity_problem
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import JunkSignals
from mailcore.domain.verdict import Verdict
from mailcore.errors import AuthenticationFailed, SendingLimitReached, Throttled, TransientFailure
from mailcore.ports import (
    LoginThrottle,
    MessageWriter,
    RawMessageStore,
    SendingLimit,
    SigningKeys,
    Suppressions,
)
from mailcore.services.accept import accept_message
from mailcore.services.login import log_in
from mailcore.services.recipients import HostedDomains, hosted_candidate
from mailcore.services.signing import sender_fields
from mailcore.services.suppression import sending_domain

logger = Logger(child=True)

DEFAULT_MAX_RECIPIENTS = 100


# The written policy for line endings (README, "SMTP edge"): a message with a CR or LF
# that is not part of a CRLF pair is refused, on every port. This is what makes the
# SMTP smuggling end sequences (\n.\n, \r.\r, ...) harmless: they can only arrive as
# bare line endings inside one message, which is then refused as a whole.
def has_bare_line_ending(content: bytes) -> bool:
    # Three memchr-speed counts; a regex with look-behind cost 200 µs per 10 KiB message.
    pairs = content.count(b"\r\n")
    return content.count(b"\r") != pairs or content.count(b"\n") != pairs


class OffLoopWriter:
    """A MessageWriter over a blocking RawMessageStore: each put runs in a thread."""

    def __init__(self, store: RawMessageStore, executor: Executor | None = None) -> None:
        self.store = store
        self._executor = executor

    async def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, accept_message, self.store, message_id, raw, envelope)


class EdgeHandler:
    offers_auth = False

    def __dir__(self) -> list[str]:
        return hook_names(type(self))  # as EdgeSMTP.__dir__: read for every session

    def __init__(
        self,
        writer: MessageWriter,
        directory: CachingAccountDirectory,
        domains: HostedDomains,
        hostname: str,
        executor: Executor | None = None,
        max_recipients: int = DEFAULT_MAX_RECIPIENTS,
        verifier: InboundVerifier | None = None,
        signals: EdgeSignals | None = None,
    ) -> None:
        self._verifier = verifier  # the MX port's (issue 28); None: verification is off
        self._signals = signals  # the MX port's GTUBE and blocklists (issue 29)
        self._writer = writer
        self._directory = directory
        self._domains = domains
        self._hostname = hostname
        self._executor = executor
        self._max_recipients = max_recipients

    async def _off_loop(self, function: Any, *args: Any) -> Any:
        # The directory and the throttle block (boto3); the loop serves other sessions.
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def handle_EHLO(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not self.offers_auth:
            # aiosmtpd would still say "AUTH" (with no mechanism) once TLS is up.
            responses = [line for line in responses if not line[4:].startswith("AUTH")]
        # aiosmtpd handles pipelined commands in order; it just does not say so.
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_PROXY(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, proxy_data: Any
    ) -> bool:
        # LOCAL and UNKNOWN headers carry no address: the session counts against the peer,
        # never against nobody (an empty client would escape the per-client limit).
        refusal = server.registry.identify(server, server.client_address)
        if refusal is not None:
            await server.push(refusal)
            return False
        return True

    async def handle_MAIL(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, address: str,
        mail_options: list[str],
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        if self._signals is not None:  # the blocklists answer while the client talks
            self._signals.begin(server, server.client_address)
        return replies.SENDER_OK

    async def handle_RCPT(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        recipient, refusal = await self._judge_recipient(server, session, address)
        if recipient is None:
            return refusal
        envelope.rcpt_tos.append(recipient)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def _judge_recipient(
        self, server: EdgeSMTP, session: Session, address: str
    ) -> tuple[str | None, str]:
        """(canonical recipient, "") to accept, or (None, the refusal reply).
        The MX port accepts hosted accounts only."""
        candidate = hosted_candidate(address, self._domains)
        if candidate is None:
            logger.info("relay denied", rcpt=address, peer=server.client_address)
            return None, replies.RELAY_DENIED
        # A cached answer costs no thread hop; only a miss asks the directory.
        is_account = self._directory.known(candidate)
        if is_account is None:
            try:
                is_account = await self._off_loop(self._directory.is_account, candidate)
            except TransientFailure:
                logger.warning("recipient lookup failed", rcpt=address, exc_info=True)
                return None, replies.LOOKUP_UNAVAILABLE
        if not is_account:
            logger.info("unknown recipient", rcpt=address, peer=server.client_address)
            return None, replies.NO_SUCH_ACCOUNT
        return candidate, ""

    async def handle_DATA(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        original = envelope.original_content or b""
        if has_bare_line_ending(original):
            logger.info("bare line ending refused", peer=server.client_address)
            return replies.BARE_LINE_ENDING
        refusal = (await self._check_content(session, original)
                   or await self._admit(session, envelope))
        if refusal is not None:
            return refusal
        if self._verifier is not None:  # the MX port: what arrives is verified
            judgement, signals = await asyncio.gather(self._verifier.judge(
                original, peer_ip=server.client_address, helo=session.host_name or "",
                mail_from=envelope.mail_from or "", off_loop=self._off_loop),
                self._junk_signals(server, original))
            if judgement.refusal is not None:
                return judgement.refusal
            return await self._store_message(server, session, envelope, judgement.original,
                                             above=judgement.results, verdict=judgement.verdict,
                                             signals=signals)
        try:
            above, original = await self._fields_above(session, original)
        except TransientFailure:
            logger.warning("message not signed", exc_info=True)
            return replies.TEMPORARY_ERROR
        return await self._store_message(server, session, envelope, original, above,
                                         signals=await self._junk_signals(server, original))

    async def _junk_signals(self, server: EdgeSMTP, original: bytes) -> JunkSignals:
        if self._signals is None:  # the submission port: its senders are our accounts
            return JunkSignals()
        return await self._signals.of(server, server.client_address, original, self._off_loop)

    async def _check_content(self, session: Session, original: bytes) -> str | None:
        return None

    async def _admit(self, session: Session, envelope: SmtpEnvelope) -> str | None:
        """The last word before the message is stored: None, or the refusal."""
        return None

    async def _fields_above(self, session: Session, original: bytes) -> tuple[bytes, bytes]:
        """Header fields stored above the Received field (the message's own, that nobody
        but this edge may add), and the message to store below it."""
        return b"", original

    async def _store_message(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, original: bytes,
        above: bytes = b"", verdict: Verdict | None = None,
        signals: JunkSignals = JunkSignals(),  # noqa: B008 (frozen: shared safely)
    ) -> str:
        message_id = new_message_id()
        received_at = datetime.now(UTC)
        client = server.client_address
        raw = above + self._received_header(session, envelope, client, message_id,
                                            received_at)
        raw += original
        stored_envelope = Envelope(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=client,
            helo=session.host_name or "",
            tls=session.ssl is not None,
            received_at=received_at,
            submitted_by=_account(session),
            verdict=verdict,
            signals=signals,
        )
        try:
            # Only a return from here may be answered with 250: the message is durable.
            await self._writer.put(message_id, raw, stored_envelope)
        except TransientFailure:
            logger.warning("message not stored", message_id=message_id, exc_info=True)
            return replies.STORAGE_UNAVAILABLE
        except Exception:
            # Unclassified means temporary: the sender keeps the message and retries.
            logger.exception("message not stored", message_id=message_id)
            return replies.TEMPORARY_ERROR
        logger.info("message accepted", message_id=message_id, size=len(raw),
                    recipients=len(envelope.rcpt_tos), peer=client,
                    submitted_by=stored_envelope.submitted_by)
        return replies.queued_as(message_id)

    def _received_header(
        self, session: Session, envelope: SmtpEnvelope, client: str, message_id: str,
        received_at: datetime,
    ) -> bytes:
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        tls = ""
        if session.ssl is not None:
            protocol += "S"
            cipher = session.ssl.get("cipher")  # (name, protocol version, secret bits)
            if isinstance(cipher, tuple) and len(cipher) >= 2:
                tls = f"\r\n\t(using {cipher[1]} with cipher {cipher[0]})"
        if _account(session):
            protocol += "A"  # RFC 3848: authenticated submission
        recipient = f"\r\n\tfor <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        header = (
            f"Received: from {_sanitise(session.host_name or 'unknown')} ({client})"
            f"\r\n\tby {self._hostname} (mailpipe) with {protocol} id {message_id}{tls}"
            f"{recipient};\r\n\t{email.utils.format_datetime(received_at)}\r\n"
        )
        return header.encode("ascii", "replace")


class SubmissionHandler(EdgeHandler):
    """The submission port: AUTH first (after STARTTLS), then mail from your own address."""

    offers_auth = True

    def __init__(self, *args: Any, throttle: LoginThrottle, sending_limit: SendingLimit,
                 signing_keys: SigningKeys, suppressions: Suppressions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._throttle = throttle
        self._sending_limit = sending_limit
        self._signing_keys = signing_keys
        self._suppressions = suppressions
        # One message signed at a time: dkimpy holds about 3.6 times a message's size while
        # it canonicalizes (91 MiB more for 25 MiB, tracemalloc), and its pure-Python work
        # holds the GIL, so signing side by side gains little and could take the task
        # past its memory limit (the data budget counts held messages, not this).
        self._signing = threading.Lock()

    async def verify_credentials(
        self, server: EdgeSMTP, login: str, password: str
    ) -> tuple[str, str | None]:
        """(reply, account) for an AUTH exchange; account is None unless it succeeded.
        The lockout is the one the API and every other task count (services.login)."""
        client = server.client_address
        try:
            logged_in = await self._off_loop(log_in, login, password, client,
                                             self._directory, self._throttle)
        except Throttled:
            logger.warning("authentication throttled", peer=client)
            return replies.AUTH_THROTTLED, None
        except AuthenticationFailed:
            logger.info("authentication failed", peer=client)
            return replies.AUTH_INVALID, None
        except TransientFailure:
            logger.warning("authentication unavailable", exc_info=True)
            return replies.AUTH_UNAVAILABLE, None
        logger.info("authenticated", account=logged_in.account, peer=client)
        return replies.AUTH_SUCCEEDED, logged_in.account

    async def handle_MAIL(
        self, server: EdgeSMTP, session: Session, envelope: SmtpEnvelope, address: str,
        mail_options: list[str],
    ) -> str:
        sender = try_parse_address(address)
        if sender is None or str(sender) != _account(session):
            return replies.NOT_YOUR_ADDRESS
        return await super().handle_MAIL(server, session, envelope, str(sender), mail_options)

    async def _judge_recipient(
        self, server: EdgeSMTP, session: Session, address: str
    ) -> tuple[str | None, str]:
        # An authenticated account may send to anyone with a plain address; at a hosted
        # domain, to an account that exists (as the API does), never to an owner-less box.
        recipient = try_parse_address(address)
        if recipient is None:
            return None, replies.BAD_RECIPIENT
        if hosted_candidate(str(recipient), self._domains) is not None:
            return await super()._judge_recipient(server, session, address)
        return await self._unless_suppressed(session, str(recipient))

    async def _unless_suppressed(self, session: Session, recipient: str
                                 ) -> tuple[str | None, str]:
        """A remote recipient on the list of the sender's domain is refused here, before
        anything is queued: no connection to its server is ever made for this message."""
        domain = sending_domain(_account(session) or "")
        if self._suppressions is None or domain is None:
            return recipient, ""
        try:
            found = await self._off_loop(self._suppressions.entries, domain, [recipient])
        except TransientFailure:
            logger.warning("suppression lookup failed", rcpt=recipient, exc_info=True)
            return None, replies.LOOKUP_UNAVAILABLE
        if recipient in found:
            logger.info("suppressed recipient refused", rcpt=recipient, domain=domain)
            return None, replies.suppressed_recipient(domain, found[recipient])
        return recipient, ""

    async def _admit(self, session: Session, envelope: SmtpEnvelope) -> str | None:
        account = _account(session)
        assert account is not None  # no MAIL before AUTH on this port
        try:
            await self._off_loop(self._sending_limit.charge, account, len(envelope.rcpt_tos))
        except SendingLimitReached:
            logger.warning("sending limit reached", account=account,
                           recipients=len(envelope.rcpt_tos))
            return replies.SENDING_LIMIT
        except TransientFailure:
            logger.warning("sending limit unavailable", exc_info=True)
            return replies.TEMPORARY_ERROR
        return None

    async def _fields_above(self, session: Session, original: bytes) -> tuple[bytes, bytes]:
        """Signed once, here, after the identity check and the sending limit: the stored
        bytes are what the Sent copy, the recipients and every retry get. Reading the keys
        (a secret, cached) and hashing the message both block: a thread does them."""
        account = _account(session)
        assert account is not None  # no MAIL before AUTH on this port
        signed: tuple[bytes, bytes] = await self._off_loop(self._sign_alone, original, account)
        return signed

    def _sign_alone(self, original: bytes, account: str) -> tuple[bytes, bytes]:
        with self._signing:
            return sender_fields(original, account, self._signing_keys, self._hostname)

    async def _check_content(self, session: Session, original: bytes) -> str | None:
        """The sender identity rules every way of sending shares (mailcore.domain.identity),
        judged off the event loop (a header section may be 256 KiB of parsing)."""
        account = _account(session)
        assert account is not None  # no MAIL before AUTH on this port
        problem = await self._off_loop(identity_problem, original, account)
        return None if problem is None else replies.identity_refusal(problem)


def _account(session: Session) -> str | None:
    data = session.auth_data if session.authenticated else None
    return data if isinstance(data, str) else None


def _sanitise(text: str) -> str:
    return "".join(char for char in text if char.isprintable() and char not in "()\r\n")[:255]
