"""The IMAP listeners of the edge: STARTTLS on one port, implicit TLS on another, pymap's
protocol engine with mailpipe's backend, and the limits a public server needs that pymap
leaves to its host (line and literal sizes, the memory all literals may hold, idle time, a
session's age and commands, connections per client and per account)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from argparse import Namespace
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger
from proxyprotocol import ProxyProtocol
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from proxyprotocol.version import ProxyProtocolVersion
from pymap.bytes import MaybeBytes
from pymap.concurrent import Event
from pymap.config import BackendCapability, IMAPConfig
from pymap.context import connection_exit, current_command
from pymap.exceptions import NotAllowedError, ResponseError
from pymap.imap import IMAPConnection, IMAPServer
from pymap.imap.state import ConnectionState
from pymap.parsing import Params
from pymap.parsing.command import Command
from pymap.parsing.command.auth import ListCommand, SelectCommand, StatusCommand
from pymap.parsing.command.nonauth import StartTLSCommand
from pymap.parsing.command.select import FetchCommand, IdleCommand, SearchCommand, StoreCommand
from pymap.parsing.commands import Commands, InvalidCommand
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import List, Number
from pymap.parsing.response import (
    CommandResponse,
    Response,
    ResponseBad,
    ResponseBye,
    ResponseCode,
    ResponseContinuation,
    ResponseNo,
    ResponseOk,
    UntaggedResponse,
)
from pymap.parsing.response.specials import FetchResponse, ListResponse, StatusResponse
from pymap.parsing.specials import FetchAttribute, SequenceSet, StatusAttribute, Tag
from pymap.parsing.specials.fetchattr import FetchValue
from pymap.parsing.state import ExpectContinuation, ParsingInterrupt
from pysasl.creds.server import ServerCredentials
from pysasl.exception import AuthenticationError
from pysasl.mechanism import ChallengeResponse, ServerChallenge

from edge.data_budget import DataBudget, Reservation
from edge.imap.backend import (
    BACKEND_CAPABILITY,
    IDLE_POLL_SECONDS,
    SPECIAL_USE_ATTRIBUTES,
    FolderSnapshot,
    FolderWatch,
    ImapIdentity,
    ImapLogin,
    ImapSession,
    ImapStorage,
)
from edge.imap.commands import (
    ExtendedListCommand,
    InitialResponseAuthenticate,
    NamespaceCommand,
    UnselectCommand,
    mailpipe_commands,
)
from edge.imap.condstore import (
    CONDSTORE,
    HIGHESTMODSEQ,
    MODSEQ_ITEM,
    CondstoreAttributes,
    CondstoreFetch,
    CondstoreSearch,
    CondstoreStore,
    EnableCommand,
    ModseqAttribute,
    modseq_of,
    modseq_value,
)
from edge.imap.listing import pattern_problem
from edge.listening import Network

logger = Logger(child=True)

# pymap's own count of BAD answers in a row is reset only by an answer it returns, not by a
# NO raised as an error (a refused CREATE), and the BYE it adds is never written: a client
# refused five times, BAD and NO in turn, was disconnected without a word.
BAD_COMMANDS_IN_A_ROW = 5
MAX_LINE = 64 * 1024  # a command line without its literals (RFC 7162 asks for >= 8 KiB)
_LITERAL_PLUS = re.compile(rb"\{(\d+)\+\}\r?\n$")
# Before login a literal carries at most a user name, a password or a SASL response:
# RFC 4616 bounds PLAIN's three parts to 255 octets each, so RFC 7888's LITERAL- bound of
# 4 KiB is several times what a login needs and all an unauthenticated client may send.
PRE_LOGIN_LITERAL = 4096
# ... and all of a command before login, its lines and literals together, is no larger than
# one command line may be: an unauthenticated connection never holds more than this.
PRE_LOGIN_COMMAND = MAX_LINE
# Literal bytes all logged-in sessions of the process may hold at once: two messages of
# APPENDLIMIT. Twenty 24 MiB APPENDs at once, two let in, grew the server by 106 MiB, their
# stored copies included (bench/imap_literals.py; 545 MiB without a budget, and 1 GB
# before login without the bound above), which leaves most of a 512 MB task to SMTP.
DEFAULT_LITERAL_BUDGET = 64 * 1024 * 1024
# A literal's bytes are read in pieces of at most this, each piece extending its deadline.
LITERAL_PIECE = 64 * 1024

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class ImapLimits:
    append_limit: int = 25 * 1024 * 1024  # the largest message, as on SMTP
    idle_seconds: float = 30 * 60  # RFC 3501 5.4: at least 30 minutes once logged in
    login_seconds: float = 60  # before login: enough for a client, little for a squatter
    per_client: int = 20
    per_account: int = 20
    idle_poll_seconds: float = IDLE_POLL_SECONDS  # an idle folder's poll (issue: < 5 s)
    literal_budget: int = DEFAULT_LITERAL_BUDGET
    # A literal is timed by its progress, as SMTP's DATA (Postfix's smtpd_min_data_rate):
    # it starts with literal_grace_seconds, each byte buys 1/min_literal_rate s more, and
    # it never has more than literal_grace_seconds in hand, so a slow but steady client
    # finishes and one that trickles or stalls gives its share of the budget back within
    # a minute rather than the idle time.
    min_literal_rate: float = 500.0
    literal_grace_seconds: float = 60
    # All the time a session may take to log in, whatever it sends meanwhile: a client logs
    # in within a second of connecting; two minutes leave room for a slow link and a client
    # that asks its user for the password with the connection open.
    max_unauthenticated_seconds: float = 120
    # A session's age: a day lets a client that re-issues IDLE every 29 minutes (RFC 2177)
    # stay connected for dozens of IDLEs; it reconnects once a day, as it does after any
    # network change, and no session holds its task's resources for ever.
    max_session_seconds: float = 24 * 3600
    # Commands in one session: mbsync sends one UID FETCH per message it copies and 17
    # commands besides (counted on a 300-message first sync), so a first sync of 10,000
    # messages sends about 10,000, and one with as many APPENDs and flag changes a few times
    # that; a client that keeps a session for a day sends far fewer.
    max_commands: int = 100_000

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], append_limit: int) -> ImapLimits:
        """The limits the edge's environment sets (MAILPIPE_IMAP_*), the defaults otherwise."""
        def number(name: str, default: float) -> float:
            return float(environ.get(name) or default)

        defaults = cls()
        return cls(
            append_limit=append_limit,
            literal_budget=int(number("MAILPIPE_IMAP_LITERAL_BUDGET", defaults.literal_budget)),
            min_literal_rate=number("MAILPIPE_IMAP_MIN_LITERAL_RATE", defaults.min_literal_rate),
            max_unauthenticated_seconds=number("MAILPIPE_IMAP_MAX_UNAUTHENTICATED_SECONDS",
                                               defaults.max_unauthenticated_seconds),
            max_session_seconds=number("MAILPIPE_IMAP_MAX_SESSION_SECONDS",
                                       defaults.max_session_seconds),
            max_commands=int(number("MAILPIPE_IMAP_MAX_COMMANDS", defaults.max_commands)))


class ImapConfig(IMAPConfig):
    def __init__(self, hostname: str, tls_context: ssl.SSLContext | None, starttls: bool,
                 limits: ImapLimits, proxy_protocol: ProxyProtocol | None = None) -> None:
        super().__init__(
            Namespace(passlib_cfg=None, proxy_protocol=None), proxy_protocol=proxy_protocol,
            host=None, port=0, ssl_context=tls_context or ssl.create_default_context(),
            # STARTTLS listener: nothing but STARTTLS before TLS. Implicit TLS listener:
            # TLS from the first byte, so logging in is allowed at once.
            tls_enabled=starttls, reject_dnsbl=False, invalid_user_sleep=0.0,
            max_append_len=limits.append_limit, bad_command_limit=None)
        self.hostname = hostname
        self.limits = limits

    @property
    def backend_capability(self) -> BackendCapability:
        return BACKEND_CAPABILITY

    @property
    def commands(self) -> Commands:
        return mailpipe_commands()

    @property
    def initial_capability(self) -> Sequence[bytes]:
        return [*super().initial_capability, b"SASL-IR"]

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [*super().login_capability, b"NAMESPACE", b"UNSELECT", b"SPECIAL-USE",
                b"ENABLE", CONDSTORE]

    @property
    def greeting(self) -> bytes:
        return b"mailpipe IMAP4rev1 ready " + self.hostname.encode("ascii", "replace")


class _NoLoopbackFavour:
    """The connection's socket facts, except that a client on the loopback is not let
    log in without TLS (pymap's default): the local runtime behaves as AWS does."""

    def __init__(self, inner: SocketInfo) -> None:
        self._inner = inner

    from_localhost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ImapConnectionState(ConnectionState):
    # RFC 7162 3.1: once a client has used CONDSTORE, every FETCH it is sent with FLAGS
    # also carries the message's MODSEQ.
    condstore = False

    @property
    def session(self) -> ImapSession:
        return cast(ImapSession, super().session)

    async def do_enable(self, cmd: EnableCommand) -> tuple[CommandResponse, None]:
        response = ResponseOk(cmd.tag, b"ENABLE completed.")
        enabled = [name for name in dict.fromkeys(cmd.capabilities) if name == CONDSTORE]
        self.condstore = self.condstore or bool(enabled)
        response.add_untagged(UntaggedResponse(b" ".join([b"ENABLED", *enabled])))
        return response, None

    async def do_select(self, cmd: SelectCommand) -> Any:
        if cmd.options.has(CONDSTORE):
            self.condstore = True
        response, selected = await super().do_select(cmd)
        if isinstance(response, ResponseOk) and selected is not None:
            response.add_untagged_ok(b"Highest", ResponseCode.of(
                b"HIGHESTMODSEQ %d" % selected.mod_sequence))
        return response, selected

    async def do_status(self, cmd: StatusCommand) -> Any:
        wanted = [item.value for item in cmd.status_list]
        if HIGHESTMODSEQ not in wanted:
            return await super().do_status(cmd)
        self.condstore = True
        snapshot, updates = await self.session.get_mailbox(cmd.mailbox, selected=self._selected)
        assert isinstance(snapshot, FolderSnapshot)
        values = {b"MESSAGES": snapshot.exists, b"RECENT": 0, b"UNSEEN": snapshot.unseen,
                  b"UIDNEXT": snapshot.next_uid, b"UIDVALIDITY": snapshot.uid_validity,
                  HIGHESTMODSEQ: snapshot.highest_modseq}
        data: dict[StatusAttribute, MaybeBytes] = {
            item: (snapshot.mailbox_id.parens if item.value == b"MAILBOXID"
                   else Number(values[item.value]))
            for item in cmd.status_list}
        response = ResponseOk(cmd.tag, b"STATUS completed.")
        response.add_untagged(StatusResponse(cmd.mailbox, data))
        return response, updates

    async def do_fetch(self, cmd: FetchCommand) -> Any:
        if not isinstance(cmd, CondstoreFetch):
            return await super().do_fetch(cmd)
        if cmd.changed_since is not None or cmd.wants_modseq:
            self.condstore = True
        if self.condstore and not cmd.wants_modseq \
                and any(attribute.value == b"FLAGS" for attribute in cmd.attributes):
            cmd.attributes = [*cmd.attributes, ModseqAttribute()]
        selected = self.selected
        if not cmd.uid:
            selected.hide_expunged = True
        if cmd.changed_since is not None:
            since = cmd.changed_since
            uids = [message.uid for _, message in selected.messages.get_all(cmd.sequence_set)
                    if modseq_of(message) > since]
            if not uids:
                updates = await self.session.check_mailbox(selected)
                return ResponseOk(cmd.tag, cmd.command + b" completed."), updates
            cmd.sequence_set = SequenceSet.build(uids, uid=True)
        set_seen = not selected.readonly and any(attr.set_seen for attr in cmd.attributes)
        messages, updates = await self.session.fetch_messages(selected, cmd.sequence_set,
                                                              set_seen)
        response = ResponseOk(cmd.tag, cmd.command + b" completed.")
        for seq, message in messages:
            if message.expunged:
                response.code = ResponseCode.of(b"EXPUNGEISSUED")
            attributes = CondstoreAttributes(message, selected, cmd.attributes)
            response.add_untagged(FetchResponse(seq, attributes,
                                                writing_hook=attributes.load_hook()))
        return response, updates

    async def do_store(self, cmd: StoreCommand) -> Any:
        unchanged_since = cmd.unchanged_since if isinstance(cmd, CondstoreStore) else None
        if unchanged_since is None and not self.condstore:
            return await super().do_store(cmd)
        self.condstore = True
        selected = self.selected
        if not cmd.uid:
            selected.hide_expunged = True
        if cmd.silent:
            selected.silence(cmd.sequence_set, cmd.flag_set, cmd.mode)
        changed, modified, updates = await self.session.store_unless_changed(
            selected, cmd.sequence_set, cmd.flag_set, cmd.mode, unchanged_since)
        code: ResponseCode | None = None
        untagged: list[FetchResponse] = []
        for seq, message in changed:
            if message.expunged:
                code = ResponseCode.of(b"EXPUNGEISSUED")
                continue
            data = [] if cmd.silent else [FetchValue.of(
                _FLAGS_ITEM,
                List(message.get_flags(selected.session_flags), sort=True))]
            if cmd.uid:
                data.append(FetchValue.of(FetchAttribute(b"UID"), Number(message.uid)))
            # Even a .SILENT STORE tells the new MODSEQ (RFC 7162 3.1.3).
            data.append(modseq_value(message))
            untagged.append(FetchResponse(seq, data))
        text = cmd.command + b" completed."
        if modified:
            numbers = [message.uid if cmd.uid else seq for seq, message in modified]
            code = ResponseCode.of(b"MODIFIED " + bytes(SequenceSet.build(numbers,
                                                                           uid=cmd.uid)))
            text = b"Conditional STORE failed for some messages."
        response = ResponseOk(cmd.tag, text, code)
        response.add_untagged(*untagged)
        return response, updates

    async def do_search(self, cmd: SearchCommand) -> Any:
        if not isinstance(cmd, CondstoreSearch) or cmd.modseq_at_least is None:
            return await super().do_search(cmd)
        self.condstore = True
        least = cmd.modseq_at_least
        if not cmd.uid:
            self.selected.hide_expunged = True
        messages, updates = await self.session.search_mailbox(self.selected, cmd.keys)
        response = ResponseOk(cmd.tag, cmd.command + b" completed.")
        found = [(seq, message) for seq, message in messages if modseq_of(message) >= least]
        if any(message.expunged for _, message in found):
            response.code = ResponseCode.of(b"EXPUNGEISSUED")
        numbers = [message.uid if cmd.uid else seq for seq, message in found]
        text = b" ".join([b"SEARCH", *(b"%d" % number for number in numbers)])
        if found:
            # RFC 7162 3.1.5: the highest MODSEQ of the messages found.
            text += b" (MODSEQ %d)" % max(modseq_of(message) for _, message in found)
        response.add_untagged(UntaggedResponse(text))
        return response, updates

    async def do_namespace(self, cmd: NamespaceCommand) -> tuple[CommandResponse, None]:
        response = ResponseOk(cmd.tag, b"NAMESPACE completed.")
        # One personal namespace, the account's own folders; nobody else's, nothing shared.
        response.add_untagged(UntaggedResponse(b'NAMESPACE (("" "/")) NIL NIL'))
        return response, None

    async def do_unselect(self, cmd: UnselectCommand) -> tuple[CommandResponse, None]:
        self._selected = None
        return ResponseOk(cmd.tag, b"UNSELECT completed."), None

    async def do_list(self, cmd: ListCommand) -> Any:
        # LIST, LSUB and LIST (SPECIAL-USE) alike: a pattern past the bounds is refused.
        problem = pattern_problem(cmd.ref_name, cmd.filter)
        if problem is not None:
            return ResponseBad(cmd.tag, problem.encode(), ResponseCode.of(b"LIMIT")), None
        if not (isinstance(cmd, ExtendedListCommand) and cmd.special_use_only):
            return await super().do_list(cmd)
        listed, updates = await self.session.list_mailboxes(
            cmd.ref_name, cmd.filter, selected=self._selected)
        response = ResponseOk(cmd.tag, b"LIST completed.")
        for name, delimiter, attributes in listed:
            if SPECIAL_USE_ATTRIBUTES & set(attributes):
                response.add_untagged(ListResponse(name, delimiter, attributes))
        return response, updates

    async def do_command(self, cmd: Command) -> CommandResponse:
        if isinstance(cmd, RefusedLiteral):
            # TOOBIG is BAD, as pymap's parser answers a literal over its own limits (RFC
            # 7889 allows either); LIMIT, a busy server, is NO: the same command may succeed
            # later.
            answer = ResponseBad if cmd.code == b"TOOBIG" else ResponseNo
            return answer(cmd.tag, cmd.text, ResponseCode.of(cmd.code))
        # pymap answers a command it could not parse with a bare BAD; the reason it found
        # (TOOBIG: a literal over APPENDLIMIT, refused before it was sent) is the client's
        # to see (RFC 7889, RFC 4469).
        if isinstance(cmd, InvalidCommand) and cmd.parse_exc is not None \
                and cmd.parse_exc.code is not None:
            return ResponseBad(cmd.tag, cmd.message, cmd.parse_exc.code)
        try:
            response = await super().do_command(cmd)
        except (ResponseError, AuthenticationError, TimeoutError, ConnectionError, EOFError):
            raise  # pymap's own answers (NO, BAD, BYE) and the end of the connection
        except Exception:
            # pymap ends the connection on any other error (BYE [SERVERBUG], in its
            # _run_state): one message or command the backend did not foresee would then
            # lock a client out of its folder on every retry. The command fails, the
            # session goes on, and the log keeps the reason.
            logger.exception("imap command failed", command=cmd.command.decode("ascii",
                                                                               "replace"))
            return ResponseNo(cmd.tag, cmd.command + b" failed: server error.",
                              ResponseCode.of(b"SERVERBUG"))
        if self.condstore and self._selected is not None:
            # The FETCH FLAGS pymap sends for changes made elsewhere, numbered as the
            # folder now is, get their MODSEQ. pymap keeps a response's list of untagged
            # responses to itself: the list is only read here, its FETCHes extended.
            self._add_modseq(untagged for untagged in response._untagged
                             if isinstance(untagged, FetchResponse))
        return response

    async def receive_updates(self, cmd: IdleCommand, done: Event) -> Iterable[UntaggedResponse]:
        untagged = list(await super().receive_updates(cmd, done))
        if self.condstore:
            self._add_modseq(response for response in untagged
                             if isinstance(response, FetchResponse))
        return untagged

    def _add_modseq(self, fetches: Iterable[FetchResponse]) -> None:
        messages = self.selected.messages
        for fetch in fetches:
            if MODSEQ_ITEM in fetch.data or _FLAGS_ITEM not in fetch.data:
                continue
            found = messages.get_all(SequenceSet.build([fetch.seq]))
            if found:
                fetch.data[MODSEQ_ITEM] = modseq_value(found[0][1])


_FLAGS_ITEM = FetchAttribute(b"FLAGS")


class CommandTooLong(EOFError):
    """Ends the connection: the client sent more than a command may hold."""


class LiteralRefused(Exception):
    """A literal the session may not take now: its code (RFC 5530) and the reason."""

    def __init__(self, code: bytes, text: bytes) -> None:
        super().__init__(text.decode())
        self.code = code
        self.text = text


class RefusedLiteral(Command):
    """A command whose synchronizing literal was refused before "+ go ahead": the client
    sends none of it (RFC 3501 7.5), so the command is answered and the session goes on."""

    command = b"[REFUSED]"

    def __init__(self, tag: bytes, refusal: LiteralRefused) -> None:
        super().__init__(tag)
        self.code = refusal.code
        self.text = refusal.text

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[Command, memoryview]:
        raise NotImplementedError("made by the connection, never parsed")


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
            literal = _LITERAL_PLUS.search(buffer[-32:])
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
        # Each untagged answer is sent before the next is loaded, and a client that does
        # not read it within the session's time is cut off (nothing more can reach it).
        untagged = resp._untagged if isinstance(resp, CommandResponse) else []
        try:
            for part in untagged:
                await part.async_write(self.writer)
                await self._drained()
            if untagged:
                Response.write(resp, self.writer)  # the tagged line, without the untagged
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




class ImapServer(IMAPServer):
    """pymap's per-connection entry, with mailpipe's connection class and limits."""

    def __init__(self, login: ImapLogin, config: ImapConfig, clients: Counter[str],
                 proxy_trusted: tuple[Network, ...] | None, budget: DataBudget,
                 held_by_account: Counter[str]) -> None:
        super().__init__(login, config)
        self._clients = clients
        self._proxy_trusted = proxy_trusted
        self._budget = budget
        self._held_by_account = held_by_account

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       sock_info: SocketInfo) -> None:
        config = cast(ImapConfig, self._config)
        if not self._from_trusted_proxy(writer):
            logger.warning("PROXY header from outside the trusted networks",
                           peer=str(writer.get_extra_info("peername")))
            writer.close()
            return
        reader._limit = MAX_LINE  # type: ignore[attr-defined]  # asyncio's line limit
        client = str(sock_info.peername_ip or "")
        with self._counted(client) as allowed:
            if not allowed:
                writer.write(b"* BYE [LIMIT] Too many connections from your address.\r\n")
                writer.close()
                return
            info = cast(SocketInfo, _NoLoopbackFavour(sock_info))
            connection = ImapConnection(self.commands, config, reader, writer, info,
                                        self._budget, self._held_by_account)
            state = ImapConnectionState(self._login, config)
            async with AsyncExitStack() as stack:
                connection_exit.set(stack)
                stack.enter_context(closing(connection))
                await connection.run(state)

    def _from_trusted_proxy(self, writer: asyncio.StreamWriter) -> bool:
        if self._proxy_trusted is None:
            return True
        peer = writer.get_extra_info("peername")
        try:
            address = ipaddress.ip_address(peer[0])
        except (TypeError, ValueError, IndexError):
            return False
        return any(address in network for network in self._proxy_trusted)

    @contextmanager
    def _counted(self, client: str) -> Iterator[bool]:
        limit = cast(ImapConfig, self._config).limits.per_client
        self._clients[client] += 1
        try:
            yield self._clients[client] <= limit
        finally:
            self._clients[client] -= 1
            if not self._clients[client]:
                del self._clients[client]


class CountedLogin(ImapLogin):
    """Sessions per account, counted across both listeners of this task."""

    def __init__(self, config: ImapConfig, storage: ImapStorage, sessions: Counter[str],
                 watch: FolderWatch) -> None:
        super().__init__(config, storage, watch)
        self.sessions = sessions

    async def authenticate(self, credentials: Any) -> ImapIdentity:
        identity = await super().authenticate(credentials)
        return _CountedIdentity(identity.name, self)


class _CountedIdentity(ImapIdentity):
    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[ImapSession]:
        login = cast(CountedLogin, self._login)
        limit = cast(ImapConfig, login.config).limits.per_account
        if login.sessions[self.name] >= limit:
            raise NotAllowedError("Too many connections for this account.")
        login.sessions[self.name] += 1
        try:
            async with super().new_session() as session:
                yield session
        finally:
            login.sessions[self.name] -= 1


@dataclass
class ImapListeners:
    servers: list[asyncio.Server]
    ports: dict[str, int]  # "imap" (STARTTLS), "imaps" (implicit TLS) -> bound port
    watch: FolderWatch

    def close(self) -> None:
        for server in self.servers:
            server.close()


async def start_imap(storage: ImapStorage, hostname: str, host: str, imap_port: int | None,
                     imaps_port: int | None, tls_context: ssl.SSLContext,
                     limits: ImapLimits | None = None,
                     proxy_trusted: tuple[Network, ...] | None = None) -> ImapListeners:
    """Both listeners (a port of None is not opened; 0 lets the kernel choose).

    With `proxy_trusted` (in AWS) every connection starts with a PROXY v2 header from those
    networks, the load balancer's nodes, as on the SMTP ports; and the load balancer's TLS
    listener has already done port 993's TLS (a PROXY header precedes the client's first
    byte, and asyncio cannot start TLS on bytes a stream has already read). Without it
    (locally) the implicit-TLS port does its TLS itself."""
    limits = limits or ImapLimits()
    budget = DataBudget(limits.literal_budget)  # one for both listeners: the process's
    held_by_account: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    watch = FolderWatch(storage, limits.idle_poll_seconds)
    listeners = ImapListeners([], {}, watch)
    proxy = ProxyProtocolVersion.V2.value if proxy_trusted is not None else None
    for name, port, starttls in (("imap", imap_port, True), ("imaps", imaps_port, False)):
        if port is None:
            continue
        config = ImapConfig(hostname, tls_context, starttls, limits, proxy)
        config.apply_context()
        server = ImapServer(CountedLogin(config, storage, sessions, watch), config, clients,
                            proxy_trusted, budget, held_by_account)
        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(server)
        own_tls = None if starttls or proxy_trusted is not None else tls_context
        listening = await asyncio.start_server(callback, host=host, port=port, ssl=own_tls,
                                               limit=MAX_LINE)
        listeners.servers.append(listening)
        listeners.ports[name] = int(listening.sockets[0].getsockname()[1])
        logger.info("imap listening", host=host, port=listeners.ports[name], role=name)
    return listeners
