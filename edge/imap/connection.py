"""One IMAP client connection: pymap's, with every read bounded (a command's line and
literals, counted and reserved from the process's literal budget; each literal timed by its
progress; the session's idle time, login time, age and commands) and every answer written
within the session's time; STARTTLS's cleartext leftovers dropped."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Awaitable
from typing import TypeVar, cast

from proxyprotocol.sock import SocketInfo
from pymap.context import current_command
from pymap.imap import IMAPConnection
from pymap.imap.state import ConnectionState
from pymap.parsing import Params
from pymap.parsing.command import Command
from pymap.parsing.command.nonauth import StartTLSCommand
from pymap.parsing.command.select import IdleCommand
from pymap.parsing.commands import Commands
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.response import (
    CommandResponse,
    Response,
    ResponseBad,
    ResponseBye,
    ResponseCode,
    ResponseContinuation,
    ResponseOk,
)
from pymap.parsing.specials import Tag
from pymap.parsing.state import ExpectContinuation, ParsingInterrupt
from pysasl.creds.server import ServerCredentials
from pysasl.exception import AuthenticationError
from pysasl.mechanism import ChallengeResponse, ServerChallenge

from edge.data_budget import DataBudget, Reservation
from edge.imap.batched_writes import BatchedWriter
from edge.imap.commands import InitialResponseAuthenticate
from edge.imap.config import ImapConfig
from edge.imap.literals import (
    LITERAL_PIECE,
    LITERAL_PLUS,
    MAX_LINE,
    PRE_LOGIN_COMMAND,
    PRE_LOGIN_LITERAL,
    CommandTooLong,
    LiteralRefused,
    RefusedLiteral,
)

# pymap's own count of BAD answers in a row is reset only by an answer it returns, not by a
# NO raised as an error (a refused CREATE), and the BYE it adds is never written: a client
# refused five times, BAD and NO in turn, was disconnected without a word.
BAD_COMMANDS_IN_A_ROW = 5

_Result = TypeVar("_Result")


class ImapConnection(IMAPConnection):
    def __init__(self, commands: Commands, config: ImapConfig, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, sock_info: SocketInfo,
                 budget: DataBudget, held_by_account: Counter[str]) -> None:
        super().__init__(commands, config, reader, writer, sock_info)
        self.limits = config.limits
        self._budget = budget
        self._held: list[Reservation] = []  # what the command being read has reserved
        # Of the budget, what each account's sessions hold together (the process's count)
        # and what this session's command holds of it.
        self._held_by_account = held_by_account
        self._account_bytes = 0
        self._holder = ""  # the account it holds them for (its session may be gone by close)
        self._state: ConnectionState | None = None
        self._tag: bytes | None = None  # the command's, once its first line is read
        # All bytes read for the command, its lines and literals: pymap asks for each
        # synchronizing literal within its own limit, so without a count over the whole
        # command a client could send 4 KiB literals without end in one SEARCH.
        self._command_bytes = 0
        # Once the command's first literal is being read: when its bytes must have come by.
        self._literal_until: float | None = None
        self._commands = 0
        self._bad_in_a_row = 0
        now = asyncio.get_running_loop().time()
        self._login_deadline = now + self.limits.max_unauthenticated_seconds
        self._age_deadline = now + self.limits.max_session_seconds

    @property
    def _logged_in(self) -> bool:
        return self._state is not None and self._state._session is not None

    def close(self) -> None:
        self._end_command()
        super().close()

    def _end_command(self) -> None:
        for reservation in self._held:
            reservation.release()
        self._held.clear()
        if self._account_bytes:
            self._held_by_account[self._holder] -= self._account_bytes
            if self._held_by_account[self._holder] <= 0:
                del self._held_by_account[self._holder]
            self._account_bytes = 0
        self._tag = None
        self._command_bytes = 0
        self._literal_until = None

    # -- what a command may hold ---------------------------------------------------------------
    def _take_literal(self, length: int) -> None:
        """Count (and after login reserve) a literal before its bytes are asked for or
        read, or raise LiteralRefused."""
        if not self._logged_in:
            if length > PRE_LOGIN_LITERAL or self._command_bytes + length > PRE_LOGIN_COMMAND:
                raise LiteralRefused(b"TOOBIG", b"Literal too large before login.")
        elif length > self.limits.append_limit:
            raise LiteralRefused(b"TOOBIG", b"Literal larger than APPENDLIMIT.")
        elif self._command_bytes + length > self.limits.append_limit + MAX_LINE:
            raise LiteralRefused(b"TOOBIG", b"Command larger than APPENDLIMIT.")
        elif not self._reserve(length):
            raise LiteralRefused(b"LIMIT", b"Server busy with other literals, retry later.")
        self._command_bytes += length

    def _reserve(self, amount: int) -> bool:
        """Hold `amount` of the budget for the command, if the process's budget has it and
        the account's sessions hold no more than one command's most together: one account
        that announces literals and never sends them (each may take the idle time) can
        stall only its own APPENDs, not everyone's."""
        account = self._account()
        if self._held_by_account[account] + amount > self.limits.append_limit + MAX_LINE:
            return False
        reservation = self._budget.reserve(amount)
        if reservation is None:
            return False
        self._held.append(reservation)
        self._held_by_account[account] += amount
        self._account_bytes += amount
        self._holder = account
        return True

    def _account(self) -> str:
        session = self._state._session if self._state is not None else None
        return session.owner if session is not None else ""

    async def _take_line(self, line: bytes) -> None:
        """Count a line read for the command; one past what a command may hold ends the
        connection, since its bytes are already here."""
        first = self._tag is None
        if first:
            self._tag = _tag_of(line)
        self._command_bytes += len(line)
        if not self._logged_in:
            too_much = self._command_bytes > PRE_LOGIN_COMMAND
        else:
            too_much = self._command_bytes > self.limits.append_limit + MAX_LINE
            # A line between literals is held with them (the first line is asyncio's
            # buffer's, MAX_LINE at most, whatever the budget).
            if not first and not too_much and not self._reserve(len(line)):
                await self._bye(b"Server busy with other literals, retry later.")
                raise CommandTooLong()
        if too_much:
            await self._bye(b"Command too large.")
            raise CommandTooLong()

    async def _interrupt(self, state: ConnectionState, interrupt: ParsingInterrupt,
                         continuations: list[memoryview]) -> None:
        expected = interrupt.expected
        if isinstance(expected, ExpectContinuation):
            # Before "+ go ahead": a refused synchronizing literal is never sent.
            self._take_literal(expected.literal_length)
        await super()._interrupt(state, interrupt, continuations)

    async def readline(self) -> memoryview:
        line = await self._bounded_line()
        await self._take_line(line)
        buffer = bytearray(line)
        while True:
            if not buffer.endswith(b"\n"):
                raise EOFError()
            literal = LITERAL_PLUS.search(buffer[-32:])
            if literal is None:
                return memoryview(buffer)
            # RFC 7888: a non-synchronizing literal arrives whatever the answer, so one the
            # session may not take ends the connection before its bytes are read.
            length = int(literal.group(1))
            try:
                self._take_literal(length)
            except LiteralRefused as refusal:
                await self.write_response(ResponseBad(
                    self._tag or b"*", refusal.text, ResponseCode.of(refusal.code)))
                await self._bye(refusal.text)
                raise CommandTooLong() from None
            await self._read_literal(buffer, length)
            line = await self._bounded_line()
            await self._take_line(line)
            buffer += line

    async def read_continuation(self, literal_length: int) -> memoryview:
        if not literal_length:  # IDLE's DONE, a SASL response: a line, the idle time's
            return await super().read_continuation(literal_length)
        buffer = bytearray()
        await self._read_literal(buffer, literal_length)
        buffer += await self.readline()
        return memoryview(buffer)

    async def _read_literal(self, buffer: bytearray, length: int) -> None:
        """A literal's `length` bytes onto `buffer`, read in pieces while they keep up."""
        if self._literal_until is None:
            now = asyncio.get_running_loop().time()
            self._literal_until = now + self.limits.literal_grace_seconds
        left = length
        while left:
            piece = await self._progressing(self.reader.read(min(left, LITERAL_PIECE)))
            if not piece:
                raise EOFError()
            buffer += piece
            left -= len(piece)

    async def _progressing(self, reading: Awaitable[bytes]) -> bytes:
        """`reading`, once the command's literal has begun: within the time its bytes
        have bought (else BYE [LIMIT]), and what it read buys more."""
        if self._literal_until is None:
            return await reading
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: see _drained.
            async with asyncio.timeout_at(self._literal_until):
                data = await reading
        except TimeoutError:
            await self._bye(b"Literal sent too slowly.")
            raise EOFError() from None
        self._literal_until = min(loop.time() + self.limits.literal_grace_seconds,
                                  self._literal_until + len(data) / self.limits.min_literal_rate)
        return data

    async def _bounded_line(self) -> bytes:
        # A line after a literal (its CRLF, the next literal's announcement) is read
        # within the literal's time: the command holds its share of the budget meanwhile.
        try:
            return await self._progressing(self.reader.readuntil(b"\n"))
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            await self._bye(b"Command line too long.")
            raise CommandTooLong() from exc

    # -- how long a session may last -----------------------------------------------------------
    def _time_left(self, idle: float) -> tuple[float, bytes]:
        """Seconds the session may still wait on its client, and why no more."""
        now = asyncio.get_running_loop().time()
        left, reason = self._age_deadline - now, b"Session too old, please reconnect."
        if not self._logged_in and self._login_deadline - now < left:
            left, reason = self._login_deadline - now, b"Too long without logging in."
        if idle < left:
            left, reason = idle, b"Idle for too long."
        return left, reason

    async def _within_limits(self, reading: Awaitable[_Result], idle: float) -> _Result:
        """`reading` (a read from the client), if it ends within `idle` seconds and before
        the session's deadlines; otherwise the session ends with BYE [LIMIT]."""
        left, reason = self._time_left(idle)
        try:
            return await asyncio.wait_for(reading, max(left, 0))
        except TimeoutError:
            await self._bye(reason)
            raise EOFError() from None

    async def read_command(self, state: ConnectionState) -> Command:
        self._end_command()  # the previous command is done: what it held is free
        if self.writer.transport.is_closing():
            raise EOFError()  # cut off (_drained): commands it sent before are not run
        self._state = state
        self._commands += 1
        if self._commands > self.limits.max_commands:
            await self._bye(b"Too many commands in one session, please reconnect.")
            raise EOFError()
        idle = self.limits.idle_seconds if self._logged_in else self.limits.login_seconds
        return await self._within_limits(self._read_command(state), idle)

    async def _read_command(self, state: ConnectionState) -> Command:
        try:
            return await super().read_command(state)
        except LiteralRefused as refusal:
            return RefusedLiteral(self._tag or b"*", refusal)

    async def authenticate(self, state: ConnectionState,
                           mech_name: bytes) -> ServerCredentials | None:
        # A SASL exchange reads the client's responses: within the login's time too.
        return await self._within_limits(self._authenticate(state, mech_name),
                                         self.limits.login_seconds)

    async def _authenticate(self, state: ConnectionState,
                            mech_name: bytes) -> ServerCredentials | None:
        command = current_command.get()
        if not isinstance(command, InitialResponseAuthenticate) or command.initial is None:
            return await super().authenticate(state, mech_name)
        mechanism = state.auth.get_server(mech_name)
        if mechanism is None:
            return None
        try:
            credentials, _ = mechanism.server_attempt([ChallengeResponse(b"", command.initial)])
        except ServerChallenge as exc:
            raise AuthenticationError("an initial response only for single-step mechanisms"
                                      ) from exc
        return credentials

    async def read_idle_done(self, cmd: IdleCommand) -> bool:
        return await self._within_limits(super().read_idle_done(cmd), self.limits.idle_seconds)

    def _discard_cleartext(self) -> None:
        """Whatever the client sent after STARTTLS in the clear is dropped, never read as
        commands of the TLS session: a man in the middle could otherwise append his own
        LOGIN to the client's STARTTLS (Postfix's CVE-2011-0411 was this for SMTP; RFC
        3207 4.2). Done before the OK goes out, with reading paused until the handshake
        (asyncio's start_tls resumes it through TLS, where plaintext fails): the client
        sends its handshake only once it has the OK, so nothing of it is dropped, however
        long the OK takes to write."""
        transport = cast(asyncio.Transport, self.writer.transport)
        transport.pause_reading()
        self.reader._buffer.clear()  # type: ignore[attr-defined]  # StreamReader has no API

    async def write_response(self, resp: Response) -> None:
        if isinstance(resp, ResponseOk) and isinstance(current_command.get(None), StartTLSCommand):
            self._discard_cleartext()
        # pymap writes a command's untagged answers all at once and waits for the client
        # to read them without a limit: a client that stopped reading kept its session
        # (and the answer, a folder's messages for FETCH 1:* BODY[]) past every deadline.
        # Untagged answers are sent a batch of 64 KiB at a time (batched_writes.py), so at
        # most a batch and the answer that filled it are held, and a client that does not
        # read a batch within the session's time is cut off (nothing more can reach it).
        untagged = resp._untagged if isinstance(resp, CommandResponse) else []
        try:
            batch = BatchedWriter(self.writer)  # batched_writes.py says why
            for part in untagged:
                await part.async_write(batch)
                if batch.full:
                    batch.flush()
                    await self._drained()
            if untagged:
                Response.write(resp, batch)  # the tagged line, without the untagged
                batch.flush()
            else:
                await resp.async_write(self.writer)
            await self._drained()
        except ConnectionError:
            return
        if isinstance(resp, ResponseContinuation):
            _ack_at_once(self.writer)
        elif isinstance(resp, CommandResponse) and resp.tag != b"*":
            self._bad_in_a_row = self._bad_in_a_row + 1 if resp.is_bad else 0
            if self._bad_in_a_row >= BAD_COMMANDS_IN_A_ROW:
                await self._bye(b"Too many errors, disconnecting.")

    async def _drained(self) -> None:
        """What was written has reached the client's socket within the session's time,
        else the connection is aborted (ConnectionError)."""
        idle = self.limits.idle_seconds if self._logged_in else self.limits.login_seconds
        left, _ = self._time_left(idle)
        try:
            # asyncio.timeout, not wait_for: wait_for (3.11) can swallow the cancellation
            # that ends a session at shutdown when the drain ends at the same moment.
            async with asyncio.timeout(max(left, 0)):
                await self.writer.drain()
        except TimeoutError:
            self.writer.transport.abort()
            raise ConnectionResetError("the client stopped reading") from None

    async def _bye(self, text: bytes) -> None:
        await self.write_response(ResponseBye(text, ResponseCode.of(b"LIMIT")))
        # Closed once written: nothing pymap writes as the session unwinds reaches the client.
        self.writer.close()


def _tag_of(line: bytes) -> bytes:
    """The tag a command's first line starts with, "*" if none can be read from it."""
    try:
        tag, _ = Tag.parse(memoryview(line), Params())
    except NotParseable:
        return b"*"
    return tag.value


def _ack_at_once(writer: asyncio.StreamWriter) -> None:
    """After "+ go ahead", the literal's bytes are ACKed as they come: the kernel would
    otherwise delay the ACK (its answer came at once, so it expects to send one with it)
    and a client that writes the literal and its closing CRLF apart, as Python's imaplib
    does, waits out Nagle's algorithm for it: 40 ms per APPEND, measured."""
    sock = writer.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
