"""Composition root of the edge container: configuration from the environment."""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger
from mailcore.adapters.aws.wiring import aws_adapters

from edge_smtp.accounts import CachingAccountDirectory
from edge_smtp.handler import EdgeHandler
from edge_smtp.server import DEFAULT_MAX_MESSAGE_SIZE, ListenerConfig, serve

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "edge_smtp"))


def main() -> None:
    adapters = aws_adapters()
    hostname = os.environ.get("MAILPIPE_HOSTNAME") or socket.getfqdn()
    config = ListenerConfig(
        host=os.environ.get("MAILPIPE_SMTP_HOST", "0.0.0.0"),
        port=int(os.environ.get("MAILPIPE_SMTP_PORT", "25")),
        hostname=hostname,
        max_message_size=int(
            os.environ.get("MAILPIPE_MAX_MESSAGE_SIZE", str(DEFAULT_MAX_MESSAGE_SIZE))
        ),
    )
    handler = EdgeHandler(
        store=adapters.store,
        directory=CachingAccountDirectory(adapters.directory),
        domains=adapters.domains,
        hostname=hostname,
        executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage"),
    )
    asyncio.run(serve(handler, config))


if __name__ == "__main__":
    main()
