"""Composition root of the IMAP container: `python -m edge imap`, the same image as the SMTP
edge with another entry point. Its own process, event loop, memory limit and thread pool:
whatever an IMAP client makes this process do (or if it dies), port 25 keeps answering."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from edge.imap.backend.storage import Blocking, ImapStorage
from edge.imap.config import ImapLimits
from edge.imap.listeners import start_imap
from edge.listening import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PROXY_TRUSTED,
    Network,
    answer_health,
    networks,
)
from edge.tls import context_from_environ
from mailcore.wiring import aws_adapters

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "edge_imap"))


def _port(environ: Mapping[str, str], name: str, default: int) -> int | None:
    value = environ.get(name, "")
    if value.lower() in ("off", "none"):
        return None
    return int(value) if value else default


@dataclass(frozen=True)
class ImapProcessConfig:
    hostname: str
    host: str = "0.0.0.0"
    imap_port: int | None = 143  # STARTTLS
    imaps_port: int | None = 993  # implicit TLS (behind the load balancer's TLS in AWS)
    health_port: int | None = 8081  # the SMTP edge's is 8080, in the same task
    proxy_protocol: bool = False
    proxy_trusted: tuple[Network, ...] = field(
        default_factory=lambda: networks(DEFAULT_PROXY_TRUSTED))
    # Storage calls block (botocore); this pool is IMAP's alone, not the SMTP edge's.
    storage_threads: int = 16

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], hostname: str) -> ImapProcessConfig:
        return cls(
            hostname=hostname,
            host=environ.get("MAILPIPE_IMAP_HOST", "0.0.0.0"),
            imap_port=_port(environ, "MAILPIPE_IMAP_PORT", 143),
            imaps_port=_port(environ, "MAILPIPE_IMAPS_PORT", 993),
            health_port=_port(environ, "MAILPIPE_IMAP_HEALTH_PORT", 8081),
            proxy_protocol=environ.get("MAILPIPE_PROXY_PROTOCOL", "").lower() in ("1", "true"),
            proxy_trusted=networks(environ.get("MAILPIPE_PROXY_TRUSTED_NETWORKS")
                                   or DEFAULT_PROXY_TRUSTED),
            storage_threads=int(environ.get("MAILPIPE_IMAP_STORAGE_THREADS") or 16),
        )


def imap_limits(environ: Mapping[str, str]) -> ImapLimits:
    """IMAP's limits from the environment (the container's variables)."""
    return ImapLimits.from_environ(
        environ, int(environ.get("MAILPIPE_MAX_MESSAGE_SIZE") or DEFAULT_MAX_MESSAGE_SIZE))


async def serve_imap(config: ImapProcessConfig, storage: ImapStorage,
                     limits: ImapLimits) -> None:
    """Both IMAP listeners and the health endpoint, until SIGTERM or SIGINT."""
    tls_context = context_from_environ(os.environ, config.hostname)
    if tls_context is None:
        # IMAP without TLS would send passwords in the clear: not served at all.
        raise SystemExit("edge_imap: no TLS certificate (MAILPIPE_TLS_CERT, "
                         "MAILPIPE_TLS_CERT_PEM or MAILPIPE_TLS_SELF_SIGNED_DIR)")
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    listeners = await start_imap(
        storage, config.hostname, config.host, config.imap_port, config.imaps_port,
        tls_context, limits, config.proxy_trusted if config.proxy_protocol else None)
    health = None
    if config.health_port is not None:
        async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await answer_health(reader, writer, draining=stopping.is_set())

        health = await asyncio.start_server(check, host=config.host, port=config.health_port)
        logger.info("imap listening", host=config.host, role="health",
                    port=int(health.sockets[0].getsockname()[1]))
    # Everything made so far (modules, botocore's service models, the adapters) lives as
    # long as the process: kept out of the cyclic collector's full passes, which otherwise
    # walk it again and again while a large folder is listed (SELECT and UID FETCH 1:*
    # (FLAGS) of 10,000 messages: 1.22 s of CPU, 0.92 s with this).
    gc.freeze()
    await stopping.wait()
    logger.info("imap stopping")
    listeners.close()
    if health is not None:
        health.close()


def main() -> None:
    adapters = aws_adapters()
    config = ImapProcessConfig.from_environ(
        os.environ, os.environ.get("MAILPIPE_HOSTNAME") or socket.getfqdn())
    executor = ThreadPoolExecutor(max_workers=config.storage_threads,
                                  thread_name_prefix="imap-storage")
    storage = ImapStorage(mailboxes=adapters.mailboxes, store=adapters.store,
                          references=adapters.references, directory=adapters.directory,
                          throttle=adapters.throttle, blocking=Blocking(executor),
                          views=adapters.imap_views)
    asyncio.run(serve_imap(config, storage, imap_limits(os.environ)))


if __name__ == "__main__":
    main()
