"""Serving the edge: one asyncio loop, one aiosmtpd SMTP protocol instance per session."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP
from aws_lambda_powertools import Logger

from edge_smtp.handler import EdgeHandler

logger = Logger(child=True)

DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024


@dataclass(frozen=True)
class ListenerConfig:
    host: str
    port: int
    hostname: str
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    command_timeout: float = 300.0


def smtp_factory(handler: EdgeHandler, config: ListenerConfig) -> SMTP:
    return SMTP(
        handler,
        hostname=config.hostname,
        ident="mailpipe ESMTP",
        data_size_limit=config.max_message_size,
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=config.command_timeout,
    )


async def serve(handler: EdgeHandler, config: ListenerConfig, grace_seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: smtp_factory(handler, config), host=config.host, port=config.port
    )
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("edge listening", host=config.host, port=config.port)
    await stopping.wait()
    logger.info("edge stopping", grace_seconds=grace_seconds)
    server.close()
    # Sessions in flight get the grace period to finish their transaction.
    try:
        await asyncio.wait_for(server.wait_closed(), grace_seconds)
    except TimeoutError:
        logger.warning("sessions still open at shutdown")
