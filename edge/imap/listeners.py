"""The IMAP listeners of the edge: STARTTLS on one port, implicit TLS on another, each
connection let in from a trusted PROXY sender only (in AWS), counted per client and, once
logged in, per account; pymap's protocol engine with mailpipe's connection, state and
backend."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import dataclass
from typing import Any, cast

from aws_lambda_powertools import Logger
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from proxyprotocol.version import ProxyProtocolVersion
from pymap.context import connection_exit
from pymap.exceptions import NotAllowedError
from pymap.imap import IMAPServer

from edge.data_budget import DataBudget
from edge.imap.backend.idle import FolderWatch
from edge.imap.backend.login import ImapIdentity, ImapLogin
from edge.imap.backend.session import ImapSession
from edge.imap.backend.storage import ImapStorage
from edge.imap.config import ImapConfig, ImapLimits
from edge.imap.connection import ImapConnection
from edge.imap.literals import MAX_LINE
from edge.imap.state import ImapConnectionState
from edge.listening import Network

logger = Logger(child=True)


class _NoLoopbackFavour:
    """The connection's socket facts, except that a client on the loopback is not let
    log in without TLS (pymap's default): the local runtime behaves as AWS does."""

    def __init__(self, inner: SocketInfo) -> None:
        self._inner = inner

    from_localhost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


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
