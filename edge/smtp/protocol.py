"""aiosmtpd's SMTP protocol, made strict: enhanced codes on every reply, limits,
draining at shutdown, and credential checks that never block the event loop.

DATA is read here rather than by aiosmtpd, which keeps every line as its own object
(about 67 bytes of heap per 2-byte empty line): one buffer per transaction, counted
against the process's DataBudget, timed by progress rather than by a fixed timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session, syntax
from aws_lambda_powertools import Logger

from edge.data_budget import DataBudget, Reservation
from edge.listening import Network
from edge.smtp import replies
from edge.smtp.sessions import SessionRegistry

logger = Logger(child=True)

# aiosmtpd decodes the AUTH exchange and hands the credentials to a synchronous
# callback; this marks them for verification off the loop instead (see _verify).
_VERIFY_LATER = "verify later"
# What DATA reserves of the budget at first; it grows as data comes.
FIRST_RESERVATION = 64 * 1024
# A refused DATA is read to its end (RFC 5321 §4.2.5) unless it runs this far past the size
# limit (or the limit again): then the session ends with the refusal.
DRAIN_MARGIN = 1024 * 1024



@dataclass(frozen=True)
class SessionLimits:
    """What one session may take: the longest DATA line, the slowest DATA, its age."""

    max_line_length: int = 64 * 1024
    # As Postfix's smtpd_min_data_rate: each byte received buys 1/rate s more, up to the
    # command timeout, so a slow but steady sender finishes and a trickle does not.
    min_data_rate: float = 500.0
    max_session_seconds: float = 3600.0


_HOOK_NAMES: dict[type, list[str]] = {}


def hook_names(cls: type) -> list[str]:
    """What aiosmtpd looks up by name in a session or its handler: its commands
    (smtp_), AUTH mechanisms (auth_) and the handler's hooks (handle_)."""
    names = _HOOK_NAMES.get(cls)
    if names is None:
        names = _HOOK_NAMES[cls] = sorted(
            name for name in dir(cls) if name.startswith(("smtp_", "auth_", "handle_")))
    return names


class EdgeSMTP(SMTP):
    def __dir__(self) -> list[str]:
        # aiosmtpd's SMTP.__init__ finds its commands and mechanisms by dir() and
        # inspect.getmembers() of the session and of its handler, on every connection: a
        # getattr of each of some 200 attributes, properties included. Listing only what it
        # looks for took a session object from 192 to 69 us (3,000 made in a loop): 7% of
        # the edge's 1.7 ms of CPU per message when every message has its own session.
        return hook_names(type(self))

    def __init__(self, handler: Any, *, registry: SessionRegistry, max_errors: int,
                 proxy_protocol: bool, budget: DataBudget,
                 proxy_trusted: Sequence[Network] = (),
                 limits: SessionLimits = SessionLimits(), **kwargs: Any) -> None:
        super().__init__(handler, authenticator=self._defer_verification, **kwargs)
        self.registry = registry
        self._max_errors = max_errors
        self._proxy_protocol = proxy_protocol
        self._proxy_trusted = tuple(proxy_trusted)
        self._budget = budget
        self._limits = limits
        self._errors = 0
        self._greeted = False
        self._in_ehlo = False
        self._receiving_until: float | None = None  # the DATA deadline, while receiving
        self._in_data = False  # from 354 to the reply: receiving, then storing
        self._expired = False
        self._expiry: asyncio.TimerHandle | None = None

    # -- session admission and shutdown ------------------------------------------------------
    async def _handle_client(self) -> None:
        refusal = self.registry.admit(self)
        if refusal is None and not self._proxy_from_peer():
            # No PROXY header is read from this peer: it is the client itself.
            self._proxy_timeout = None
            refusal = self.registry.identify(self, self.client_address)
        if refusal is not None:
            logger.info("session refused", peer=self.client_address, reply=refusal)
            self.close_with(refusal)
            self.registry.release(self)
            return
        self._expiry = self.loop.call_later(self._limits.max_session_seconds, self._age_cb)
        try:
            await super()._handle_client()
        finally:
            self._expiry.cancel()
            self.registry.release(self)

    def _proxy_from_peer(self) -> bool:
        """A PROXY header is expected only behind the load balancer: from a trusted network.
        Anyone else who could reach the port would choose the address we record and limit."""
        if not self._proxy_protocol:
            return False
        try:
            peer = ipaddress.ip_address(self._peer_host())
        except ValueError:
            return False
        return any(peer in network for network in self._proxy_trusted)

    def _peer_host(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")

    def _create_session(self) -> Session:
        # aiosmtpd starts a new session at the TLS handshake (RFC 3207 §4.2 resets the
        # SMTP state); the client the load balancer reported is still the same client.
        session = super()._create_session()
        previous = getattr(self, "session", None)
        if previous is not None:
            session.proxy_data = previous.proxy_data
        return session

    async def smtp_PROXY(self, arg: str) -> None:
        # A PROXY line as a command: sent by a peer we do not take PROXY headers from.
        logger.warning("proxy header refused", peer=self._peer_host())
        self.close_with(replies.PROXY_REFUSED)

    @property
    def client_address(self) -> str:
        """The real client: from the PROXY header behind a load balancer, else the peer."""
        # No session before the connection is made (a refusal is logged with this).
        if getattr(self, "session", None) is None:
            return ""
        assert self.session is not None
        proxy = self.session.proxy_data
        if proxy is not None and getattr(proxy, "src_addr", None):
            return str(proxy.src_addr)
        # No PROXY header, or one with no address (LOCAL, UNKNOWN): the peer itself.
        return self._peer_host()

    @property
    def in_transaction(self) -> bool:
        envelope = getattr(self, "envelope", None)
        return envelope is not None and envelope.mail_from is not None

    def close_with(self, reply: str) -> None:
        # The session is over for the limits and for draining, even while a TLS
        # transport still waits for the client's close_notify.
        self.registry.release(self)
        if self.transport is None or self.transport.is_closing():
            return
        self._writer.write(reply.encode("ascii") + b"\r\n")
        # close() sends what is buffered before it closes.
        self.transport.close()

    def _timeout_cb(self) -> None:
        deadline = self._receiving_until
        if deadline is not None and deadline > self.loop.time():
            # DATA made progress since the timer was set: wait for the new deadline.
            self._reset_timeout(deadline - self.loop.time())
            return
        # aiosmtpd just drops an idle session; RFC 5321 §4.2.2 says tell the client why.
        logger.info("session timed out", peer=self.client_address,
                    receiving=deadline is not None)
        self.close_with(replies.TIMEOUT)

    def _age_cb(self) -> None:
        if self._in_data:
            self._expired = True  # the message in flight ends first (see smtp_DATA)
            return
        logger.info("session too old", peer=self.client_address)
        self.close_with(replies.SESSION_TOO_OLD)

    # -- DATA --------------------------------------------------------------------------------
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        # Not the SIZE a client declares: it would hold the budget without sending a byte.
        reservation = self._budget.reserve(FIRST_RESERVATION)
        if reservation is None:
            logger.warning("data budget spent", peer=self.client_address,
                           in_use=self._budget.in_use)
            await self.push(replies.INSUFFICIENT_STORAGE)
            return
        self._in_data = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            refusal = await self._receive(reservation)
            if self.transport is None or self.transport.is_closing():
                return
            if refusal is not None:
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                await self.push(refusal)
            else:
                status = await self._call_handler_hook("DATA")
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                await self.push(status)
        finally:
            self._in_data = False
            reservation.release()
        if self.registry.draining:
            self.close_with(replies.SHUTTING_DOWN)
        elif self._expired:
            self.close_with(replies.SESSION_TOO_OLD)

    async def _receive(self, reservation: Reservation) -> str | None:
        """Read DATA up to the lone dot into one buffer; None when it is the message (on
        the envelope), else the refusal, sent only after the end (RFC 5321 §4.2.5).

        It reads in chunks, never past the end of data (pipelined commands may follow):
        where what was read ends with the start of an end marker that the next bytes may
        complete, only those bytes are read."""
        assert self.envelope is not None and self._timeout_duration is not None
        limit = self.data_size_limit or 0
        max_line = self._limits.max_line_length
        per_byte = 1 / self._limits.min_data_rate
        timeout = float(self._timeout_duration)
        body = bytearray()
        tail = b"\r\n"  # the data starts at the start of a line
        received = 0
        line_length = 0  # since the last LF (a bare one is refused later anyway)
        refusal: str | None = None
        self._receiving_until = self.loop.time() + timeout
        try:
            while self.transport is not None:
                exact = _bytes_to_end(tail, _received_unread(self._reader))
                if exact:
                    piece = await self._reader.readexactly(exact)
                else:
                    try:
                        piece = await self._reader.readuntil(END_OF_DATA)
                    except asyncio.LimitOverrunError as overrun:
                        # No end in the reader's buffer: take all but its last bytes,
                        # which may start the end marker (asyncio keeps them).
                        piece = await self._reader.read(min(overrun.consumed, max_line))
                # Only the last bytes matter: no copy of the whole piece per read.
                tail = (tail + piece[-len(END_OF_DATA):])[-len(END_OF_DATA):]
                ended = tail.endswith(END_OF_DATA)
                received += len(piece)
                line_length, too_long = _line_lengths(piece, line_length, max_line)
                self._receiving_until = min(self.loop.time() + timeout,
                                            self._receiving_until + len(piece) * per_byte)
                if refusal is None:
                    if limit and received > limit:
                        refusal = replies.TOO_MUCH_DATA
                    elif too_long:
                        refusal = replies.LINE_TOO_LONG
                    elif not reservation.cover(received):
                        logger.warning("data budget spent", peer=self.client_address,
                                       in_use=self._budget.in_use)
                        refusal = replies.INSUFFICIENT_STORAGE
                    if refusal is not None:
                        body = bytearray()
                    else:
                        body += piece
                elif limit and received > limit + max(limit, DRAIN_MARGIN):
                    # Refused: read to the end and keep nothing, but not forever.
                    self.close_with(refusal)
                    return refusal
                if ended:
                    break
        finally:
            self._receiving_until = None
            self._reset_timeout()
        if refusal is None:
            del body[-3:]  # the lone dot's line; the CRLF before it ends the last line
            self.envelope.content = self.envelope.original_content = _unstuffed(body)
        return refusal

    # -- replies -----------------------------------------------------------------------------
    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if not self._greeted:
            self._greeted = True  # the greeting carries no enhanced code
        elif not (self._in_ehlo and text.startswith("250")):
            text = replies.with_enhanced_code(text)
        await super().push(text)
        if text.startswith("5"):
            self._errors += 1
            if self._errors >= self._max_errors:
                logger.info("too many errors", peer=self.client_address, errors=self._errors)
                self.close_with(replies.TOO_MANY_ERRORS)

    # -- AUTH --------------------------------------------------------------------------------
    @staticmethod
    def _defer_verification(server: SMTP, session: Any, envelope: Any, mechanism: str,
                            auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, auth_data=auth_data,
                          message=_VERIFY_LATER)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, result: AuthResult) -> AuthResult:
        if result.message != _VERIFY_LATER:
            return result  # aiosmtpd already answered (bad base64, aborted exchange)
        credentials = result.auth_data
        assert isinstance(credentials, LoginPassword)
        verify = getattr(self.event_handler, "verify_credentials", None)
        if verify is None:
            return AuthResult(success=False, handled=False)
        login = bytes(credentials.login).decode("utf-8", "replace")
        password = bytes(credentials.password).decode("utf-8", "replace")
        reply, account = await verify(self, login, password)
        if account is None:
            return AuthResult(success=False, handled=False, message=reply)
        return AuthResult(success=True, handled=False, auth_data=account, message=reply)


END_OF_DATA = b"\r\n.\r\n"


def _received_unread(reader: asyncio.StreamReader) -> bytes | bytearray | None:
    """What the reader holds but has not handed out; None where asyncio hides it. aiosmtpd
    itself reaches into this buffer (to drop plaintext at STARTTLS)."""
    buffer = getattr(reader, "_buffer", None)
    return buffer if isinstance(buffer, bytes | bytearray) else None


def _bytes_to_end(tail: bytes, ahead: bytes | bytearray | None) -> int:
    """0 when no end-of-data marker can start in `tail` (what was read last) and end in
    what follows; else how many bytes to read exactly: those that end it, or, where the
    bytes `ahead` do not tell yet, the fewest that may."""
    starts = [length for length in range(len(END_OF_DATA) - 1, 0, -1)
              if tail.endswith(END_OF_DATA[:length])]
    if not starts:
        return 0
    if ahead is None or len(ahead) < len(END_OF_DATA):
        return len(END_OF_DATA) - starts[0]
    for length in starts:
        if ahead.startswith(END_OF_DATA[length:]):
            return len(END_OF_DATA) - length
    return 0


def _line_lengths(piece: bytes, current: int, max_line: int) -> tuple[int, bool]:
    """The length of the line still open after `piece` (it had `current` bytes before),
    and whether any line of it ran over `max_line` bytes."""
    first = piece.find(b"\n")
    if first < 0:
        current += len(piece)
        return current, current > max_line
    too_long = current + first + 1 > max_line
    if len(piece) > max_line and not too_long:
        # Only a piece this long can hold a whole line over the limit.
        start = first + 1
        while not too_long:
            end = piece.find(b"\n", start)
            if end < 0:
                break
            too_long = end + 1 - start > max_line
            start = end + 1
    last = piece.rfind(b"\n")
    open_line = len(piece) - last - 1
    return open_line, too_long or open_line > max_line


def _unstuffed(body: bytearray) -> bytes:
    """RFC 5321 §4.5.2: a line that starts with a dot had one added by the client."""
    if body.startswith(b"."):
        del body[0]
    if b"\r\n." in body:
        body = body.replace(b"\r\n.", b"\r\n")
    return bytes(body)
