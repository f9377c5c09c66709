"""Composition root of the edge container: configuration from the environment."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aws_lambda_powertools import Logger

from edge_imap.backend import Blocking, ImapStorage
from edge_imap.server import ImapLimits, start_imap
from edge_smtp.accounts import CachingAccountDirectory
from edge_smtp.handler import EdgeHandler, SubmissionHandler
from edge_smtp.server import Edge, EdgeConfig, serve
from edge_smtp.tls import ensure_self_signed, server_context
from mailcore.adapters.aws.wiring import aws_adapters, edge_writer
from mailcore.adapters.faults import FaultInjectingWriter
from mailcore.ports import MessageWriter

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "edge_smtp"))


def _write_pem_pair(cert_pem: str, key_pem: str) -> tuple[Path, Path]:
    """ECS hands the certificate over from Secrets Manager as variables; ssl wants files."""
    folder = Path(tempfile.mkdtemp(prefix="mailpipe-tls-"))
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_text(cert_pem)
    key.touch(mode=0o600)
    key.write_text(key_pem)
    return cert, key


def main() -> None:
    adapters = aws_adapters()
    config = EdgeConfig.from_environ(
        os.environ, os.environ.get("MAILPIPE_HOSTNAME") or socket.getfqdn())
    cert, key = config.tls_cert, config.tls_key
    if (cert is None or key is None) and os.environ.get("MAILPIPE_TLS_CERT_PEM"):
        cert, key = _write_pem_pair(os.environ["MAILPIPE_TLS_CERT_PEM"],
                                    os.environ.get("MAILPIPE_TLS_KEY_PEM", ""))
    if cert is None or key is None:
        self_signed = os.environ.get("MAILPIPE_TLS_SELF_SIGNED_DIR")
        if self_signed:
            cert, key = ensure_self_signed(Path(self_signed), config.hostname)
    tls_context = server_context(cert, key) if cert and key else None
    if tls_context is None:
        logger.warning("no TLS certificate: STARTTLS and the submission port are off")
    writer: MessageWriter = edge_writer()
    fault_switch = os.environ.get("MAILPIPE_FAULT_STORAGE_SWITCH")
    if fault_switch:
        logger.warning("storage fault injection armed", switch=fault_switch)
        writer = FaultInjectingWriter(writer, Path(fault_switch))
    # For the directory, the throttle and IMAP's storage calls, which block (botocore).
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage")
    directory = CachingAccountDirectory(adapters.directory)
    mx = EdgeHandler(writer, directory, adapters.domains, config.hostname, executor,
                     config.max_recipients)
    submission = None
    if tls_context is not None:
        submission = SubmissionHandler(writer, directory, adapters.domains,
                                       config.hostname, executor, config.max_recipients,
                                       throttle=adapters.throttle,
                                       sending_limit=adapters.sending_limit)
    start_imap_listeners = None
    if tls_context is not None and (config.imap_port or config.imaps_port):
        imap_context = tls_context
        storage = ImapStorage(mailboxes=adapters.mailboxes, store=adapters.store,
                              references=adapters.references, directory=adapters.directory,
                              throttle=adapters.throttle, blocking=Blocking(executor))

        async def start_imap_listeners() -> Callable[[], None]:
            listeners = await start_imap(
                storage, config.hostname, config.host, config.imap_port, config.imaps_port,
                imap_context, ImapLimits.from_environ(os.environ, config.max_message_size),
                config.proxy_trusted if config.proxy_protocol else None)
            return listeners.close

    asyncio.run(serve(Edge(config, mx, submission, tls_context), start_imap_listeners))


if __name__ == "__main__":
    main()
