"""Serving the edge: one asyncio loop, the MX and submission listeners, a health
endpoint, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_lambda_powertools import Logger

from edge.data_budget import DataBudget
from edge.listening import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PROXY_TRUSTED,
    Network,
    answer_health,
    networks,
)
from edge.smtp.handler import DEFAULT_MAX_RECIPIENTS, EdgeHandler, SubmissionHandler
from edge.smtp.junk_signals import DNSBL_VARIABLE, zones_of
from edge.smtp.protocol import EdgeSMTP, SessionLimits
from edge.smtp.sessions import SessionRegistry

logger = Logger(child=True)

# Message bytes all sessions may hold at once. A held message costs about twice its size
# at its peak (the buffer, then the stored copy with its trace header), so 128 MiB keeps a
# 512 MB task under ~300 MiB beside its ~50 MiB baseline (bench/edge_memory.py).
DEFAULT_DATA_MEMORY_BUDGET = 128 * 1024 * 1024


@dataclass(frozen=True)
class EdgeConfig:
    hostname: str
    host: str = "0.0.0.0"
    mx_port: int = 25
    submission_port: int | None = 587
    health_port: int | None = 8080
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    max_connections: int = 1000
    max_connections_per_client: int = 20
    command_timeout: float = 300.0
    max_errors: int = 20
    proxy_protocol: bool = False
    proxy_trusted: tuple[Network, ...] = field(
        default_factory=lambda: networks(DEFAULT_PROXY_TRUSTED))
    tls_cert: Path | None = None
    tls_key: Path | None = None
    grace_seconds: float = 30.0
    data_memory_budget: int = DEFAULT_DATA_MEMORY_BUDGET
    limits: SessionLimits = field(default_factory=SessionLimits)
    # Per command name in one session (aiosmtpd's call limit), then 421 4.7.0.
    max_commands: int = 10_000
    dnsbl_zones: tuple[str, ...] = ()  # DNS blocklists of the MX port's clients (issue 29)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], hostname: str) -> EdgeConfig:
        def number(name: str, default: float) -> float:
            return float(environ.get(name) or default)

        def port(name: str, default: int | None) -> int | None:
            value = environ.get(name, "")
            if value.lower() in ("off", "none"):
                return None
            return int(value) if value else default

        cert, key = environ.get("MAILPIPE_TLS_CERT"), environ.get("MAILPIPE_TLS_KEY")
        return cls(
            hostname=hostname,
            host=environ.get("MAILPIPE_SMTP_HOST", "0.0.0.0"),
            mx_port=int(environ.get("MAILPIPE_SMTP_PORT") or 25),
            submission_port=port("MAILPIPE_SUBMISSION_PORT", 587),
            health_port=port("MAILPIPE_HEALTH_PORT", 8080),
            max_message_size=int(number("MAILPIPE_MAX_MESSAGE_SIZE", DEFAULT_MAX_MESSAGE_SIZE)),
            max_recipients=int(number("MAILPIPE_MAX_RECIPIENTS", DEFAULT_MAX_RECIPIENTS)),
            max_connections=int(number("MAILPIPE_MAX_CONNECTIONS", 1000)),
            max_connections_per_client=int(number("MAILPIPE_MAX_CONNECTIONS_PER_CLIENT", 20)),
            command_timeout=number("MAILPIPE_COMMAND_TIMEOUT", 300),
            max_errors=int(number("MAILPIPE_MAX_ERRORS", 20)),
            proxy_protocol=environ.get("MAILPIPE_PROXY_PROTOCOL", "").lower() in ("1", "true"),
            proxy_trusted=networks(environ.get("MAILPIPE_PROXY_TRUSTED_NETWORKS")
                                   or DEFAULT_PROXY_TRUSTED),
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            grace_seconds=number("MAILPIPE_SHUTDOWN_GRACE", 30),
            data_memory_budget=int(number("MAILPIPE_DATA_MEMORY_BUDGET",
                                          DEFAULT_DATA_MEMORY_BUDGET)),
            limits=SessionLimits(
                max_line_length=int(number("MAILPIPE_MAX_LINE_LENGTH", 64 * 1024)),
                min_data_rate=number("MAILPIPE_MIN_DATA_RATE", 500),
                max_session_seconds=number("MAILPIPE_MAX_SESSION_SECONDS", 3600)),
            max_commands=int(number("MAILPIPE_MAX_COMMANDS", 10_000)),
            dnsbl_zones=zones_of(environ.get(DNSBL_VARIABLE)),
        )


def smtp_factory(handler: EdgeHandler, config: EdgeConfig, registry: SessionRegistry,
                 tls_context: ssl.SSLContext | None, budget: DataBudget) -> EdgeSMTP:
    submission = isinstance(handler, SubmissionHandler)
    return EdgeSMTP(
        handler,
        registry=registry,
        max_errors=config.max_errors,
        proxy_protocol=config.proxy_protocol,
        proxy_trusted=config.proxy_trusted,
        budget=budget,
        limits=config.limits,
        command_call_limit=config.max_commands,
        hostname=config.hostname,
        ident="mailpipe ESMTP",
        data_size_limit=config.max_message_size,
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=config.command_timeout,
        tls_context=tls_context,
        # Submission: no command but EHLO, STARTTLS and QUIT before TLS; no mail before AUTH.
        require_starttls=submission and tls_context is not None,
        auth_required=submission,
        auth_require_tls=True,
        auth_exclude_mechanism=[] if submission else ["PLAIN", "LOGIN"],
        proxy_protocol_timeout=30 if config.proxy_protocol else None,
    )


class Edge:
    def __init__(self, config: EdgeConfig, mx: EdgeHandler,
                 submission: SubmissionHandler | None,
                 tls_context: ssl.SSLContext | None) -> None:
        self.config = config
        self.registry = SessionRegistry(config.max_connections, config.max_connections_per_client)
        self.budget = DataBudget(config.data_memory_budget)
        self._mx = mx
        self._submission = submission
        self._tls = tls_context
        self._servers: list[asyncio.Server] = []
        # Role -> the port actually bound: with port 0 in the config the kernel picks one, which
        # is how tests get distinct ports without a probe-then-bind race.
        self.bound_ports: dict[str, int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        listeners: list[tuple[int, EdgeHandler]] = [(config.mx_port, self._mx)]
        if self._submission is not None and config.submission_port is not None:
            listeners.append((config.submission_port, self._submission))
        for port, handler in listeners:
            def factory(handler: EdgeHandler = handler) -> EdgeSMTP:
                return smtp_factory(handler, config, self.registry, self._tls, self.budget)

            server = await loop.create_server(factory, host=config.host, port=port)
            role = "submission" if isinstance(handler, SubmissionHandler) else "mx"
            self._listen(role, server)
        if config.health_port is not None:
            self._listen("health", await asyncio.start_server(
                self._health, host=config.host, port=config.health_port))

    def _listen(self, role: str, server: asyncio.Server) -> None:
        self._servers.append(server)
        self.bound_ports[role] = int(server.sockets[0].getsockname()[1])
        logger.info("edge listening", host=self.config.host, port=self.bound_ports[role], role=role)

    async def _health(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_health(reader, writer, draining=self.registry.draining)

    async def stop(self) -> None:
        """New sessions get 421 4.3.2 while those in a transaction finish (the grace period)."""
        logger.info("edge stopping", sessions=len(self.registry),
                    grace_seconds=self.config.grace_seconds)
        cut_off = await self.registry.drain(self.config.grace_seconds)
        for server in self._servers:
            server.close()
        logger.info("edge stopped", cut_off=cut_off)


async def serve(edge: Edge) -> None:
    """Run the edge until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await edge.start()
    await stopping.wait()
    await edge.stop()
